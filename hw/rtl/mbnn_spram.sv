// One iCE40 UltraPlus single-port RAM block, 16K x 16 (256 kbit): the SB_SPRAM256KA primitive when
// synthesised (Yosys defines SYNTHESIS), else a behavioural model of it for Verilator with the primitive's
// timing as Yosys' ice40/cells_sim.v describes it, so simulation sees what the chip does:
//   - one port: a cycle either reads (wren 0: dout <= mem[addr] at the clock edge, one cycle of latency)
//     or writes (wren 1: the nibbles whose maskwren bit is 1; dout is undefined after a write);
//   - no initial contents: a bitstream cannot carry SPRAM data, whatever holds the RAM writes it first.
// Always selected, awake and powered (CHIPSELECT 1, STANDBY 0, SLEEP 0, POWEROFF 1: POWEROFF is active low).
module mbnn_spram (
    input  logic        clk,
    input  logic [13:0] addr,
    input  logic [15:0] din,
    input  logic [3:0]  maskwren,   // nibble i = din[4i +: 4]
    input  logic        wren,
    output logic [15:0] dout
);
`ifdef SYNTHESIS
    SB_SPRAM256KA u_ram (
        .ADDRESS(addr), .DATAIN(din), .MASKWREN(maskwren), .WREN(wren), .CHIPSELECT(1'b1), .CLOCK(clk),
        .STANDBY(1'b0), .SLEEP(1'b0), .POWEROFF(1'b1), .DATAOUT(dout)
    );
`else
    logic [15:0] mem [0:16383];
    always_ff @(posedge clk) begin
        if (!wren) dout <= mem[addr];
        else begin
            for (int i = 0; i < 4; i++) if (maskwren[i]) mem[addr][4*i +: 4] <= din[4*i +: 4];
            dout <= 'x;   // the primitive's output after a write is undefined (Verilator: --x-assign)
        end
    end
`endif
endmodule
