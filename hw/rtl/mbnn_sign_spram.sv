// mbnn_layer's sign words in iCE40 UP5K SPRAM (W_SPRAM = 1): the same wide word as the block-RAM
// memory (PE lanes x 32 bits at wide address g*W + w, lane p = neuron g*PE + p), here 2*PE mbnn_spram
// blocks side by side (block 2p + h holds bits [16h +: 16] of lane p), at most 16K words deep.
//
// One port for both sides, which is free because the engine reads only while it runs and the host or
// the update unit writes only while it is idle (mbnn_layer's `busy` rule):
//   read   raddr, every cycle no write is under way: rdata is the word of the address one cycle before,
//          the latency of the block-RAM memory it replaces;
//   write  a FORMAT word (lane, wide address wa, data, bit mask), decoded by mbnn_layer. SPRAM writes
//          whole nibbles (MASKWREN), so a mask that is all-ones or all-zeros in every nibble is written
//          at once and takes effect the next cycle, as in block RAM. A mask that splits a nibble is a
//          read-modify-write: this cycle reads the word, the next writes (old & ~mask) | (data & mask);
//          `hold` is high in that second cycle (mbnn_layer starts no image then) and no other write may
//          come in it (simulation stops with an error). The update unit's chunk writes are whole nibbles
//          at SIMD >= 4; the host's writes over the UART are thousands of cycles apart.
// No initial contents (a bitstream cannot set SPRAM): write every sign word after configuration.
module mbnn_sign_spram #(
    parameter int PE = 1,
    parameter int DEPTH = 2,    // G * W wide words
    parameter int RAW = 1,      // address width, >= clog2(DEPTH)
    parameter int PBW = 1       // lane index width
) (
    input  logic            clk,
    input  logic            rst,
    input  logic [RAW-1:0]  raddr,
    output logic [32*PE-1:0] rdata,
    input  logic            we,
    input  logic [RAW-1:0]  wa,
    input  logic [PBW-1:0]  lane,
    input  logic [31:0]     wdata,
    input  logic [31:0]     wmask,
    output logic            hold
);
    if (DEPTH > 16384 || RAW > 14) begin : g_bad
        $error("mbnn_sign_spram: a layer's sign words need more than 16K wide words (one SPRAM block's depth)");
    end

    // nibbles of the mask: whole (written directly) or split (read-modify-write)
    logic [7:0] nib_all, nib_any;
    for (genvar k = 0; k < 8; k++) begin : g_nib
        assign nib_all[k] = &wmask[4*k +: 4];
        assign nib_any[k] = |wmask[4*k +: 4];
    end
    logic split;
    assign split = |(nib_any & ~nib_all);

    // the read-modify-write in flight: its word, lane, data and mask
    logic           pend;
    logic [RAW-1:0] pa;
    logic [PBW-1:0] pl;
    logic [31:0]    pd, pm, old, merged;
    always_ff @(posedge clk) begin
        if (rst) pend <= 1'b0;
        else     pend <= we && split;
        if (we && split) begin pa <= wa; pl <= lane; pd <= wdata; pm <= wmask; end
`ifndef SYNTHESIS
        if (!rst && we && pend)
            $error("mbnn_sign_spram: a write in the second cycle of a read-modify-write (mask splitting a nibble)");
`endif
    end
    assign hold = pend;
    assign old = rdata[32*pl +: 32];
    assign merged = (old & ~pm) | (pd & pm);

    for (genvar b = 0; b < 2 * PE; b++) begin : g_blk
        localparam int P = b / 2, H = b % 2;
        logic [13:0] addr;
        logic [15:0] din;
        logic [3:0]  mw;
        logic        wren;
        always_comb begin
            if (pend) begin            // the write of the read-modify-write: the whole merged word
                addr = 14'(pa); din = merged[16*H +: 16]; mw = 4'hF; wren = (32'(pl) == P);
            end else if (we) begin     // a direct write, or the read of a read-modify-write (wren 0)
                addr = 14'(wa); din = wdata[16*H +: 16]; mw = nib_all[4*H +: 4]; wren = !split && (32'(lane) == P);
            end else begin             // the engine's read
                addr = 14'(raddr); din = wdata[16*H +: 16]; mw = 4'h0; wren = 1'b0;
            end
        end
        mbnn_spram u_spram (.clk(clk), .addr(addr), .din(din), .maskwren(mw), .wren(wren),
                            .dout(rdata[32*P + 16*H +: 16]));
    end
endmodule
