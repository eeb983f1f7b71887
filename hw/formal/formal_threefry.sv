// Formal harness: hw/rtl/mbnn_threefry.sv computes the spec's generator (ref_threefry.sv) for every input.
//
// Combinational (threefry.ys, by cec.sh): the script first counts the unit's pipeline registers (2 x LAT enabled
// 32-bit registers, every one of them enabled by `en`, none without), then replaces each by a wire (ff_bypass.sv),
// so what is left is the unit's 20 rounds as its logic computes them, whatever STAGE put registers between them.
// Claim: for every counter (c0, c1) and key (k0, k1), that logic gives ref_threefry's (x0, x1), and the reference
// gives FORMAT.md 4.4's three known-answer vectors (constants, folded). When the draw comes out (LAT enabled cycles
// after its c0) is the cocotb test's claim (hw/tb/mbnn_threefry, STAGE 1, 4 and 20, random `en` gaps).
// Why not a bounded model check of the pipeline: the miter of two 20-round adder networks did not finish in 5
// minutes with boolector (STAGE 20, bmc depth 3, incremental or not), while ABC's SAT sweeping takes a second.
module formal_threefry #(
    parameter int STAGE = 4
) (
    input logic        clk,
    input logic        en,
    input logic [31:0] c0,
    input logic [31:0] c1,
    input logic [31:0] k0,
    input logic [31:0] k1
);
    logic [31:0] x0, x1, w0, w1;
    mbnn_threefry #(.STAGE(STAGE)) dut (.clk(clk), .en(en), .c0(c0), .c1(c1), .k0(k0), .k1(k1), .x0(x0), .x1(x1));
    ref_threefry spec (.c0(c0), .c1(c1), .k0(k0), .k1(k1), .x0(w0), .x1(w1));

    // FORMAT.md 4.4's vectors, through the reference
    logic [31:0] a0, a1, b0, b1, e0, e1;
    ref_threefry kat_a (.c0(32'h0), .c1(32'h0), .k0(32'h0), .k1(32'h0), .x0(a0), .x1(a1));
    ref_threefry kat_b (.c0(32'hFFFFFFFF), .c1(32'hFFFFFFFF), .k0(32'hFFFFFFFF), .k1(32'hFFFFFFFF), .x0(b0), .x1(b1));
    ref_threefry kat_e (.c0(32'h243F6A88), .c1(32'h85A308D3), .k0(32'h13198A2E), .k1(32'h03707344), .x0(e0), .x1(e1));

    always_comb begin
        assert (a0 == 32'h6B200159 && a1 == 32'h99BA4EFE);
        assert (b0 == 32'h1CB996FC && b1 == 32'hBB002BE7);
        assert (e0 == 32'hC4923A9C && e1 == 32'h483DF7A0);
        assert (x0 == w0 && x1 == w1);
    end
endmodule
