// Formal harness, the pixel lane's product lemma (step 0 of formal_update_lane.sv's proof for PIXELS): for every
// delta and pixel x, the lane's |grad| and sign bits (its wires gmag, gpos, gneg: the unsigned 16 x 8 product
// |delta| * x and whether delta * x is > 0, < 0) are those of the spec's grad = delta * x (ref_lane_u's signed
// 32-bit product), and |grad| < 2^24. Combinational: every signal it asserts on is a function of delta and x.
// SR = 1: the same lemma on the stochastic-rounding lane (its own elaboration: the sr_pixels_* tasks cut it).
//
// The four *_w wires below have no driver in this file: pixel_grad.ys connects them, after flattening, to the
// named wires inside the two instances (Yosys reads no hierarchical references). One left undriven stops the run
// (check -assert) or, as a free input, fails it: it never passes. Proven with ABC's BDDs (cec.sh, 12-16 s CPU):
// on these two products, built on different operands (|delta| against delta, 24 against 32 bits), boolector had
// not finished after 7 minutes, nor ABC's SAT-based iprove after 5 (docs/HARDWARE.md, "Formal checks").
module formal_pixel_grad #(
    parameter int HB = 8,
    parameter int TK = 4,
    parameter int SR = 0
) (
    input logic                     clk,
    input logic                     en,
    input logic [4:0]               lr_shift,
    input logic [(16 << TK) - 1:0]  table_flat,
    input logic signed [HB-1:0]     h,
    input logic [7:0]               x,
    input logic signed [15:0]       delta,
    input logic [31:0]              r0,
    input logic [31:0]              r1
);
    // the lane and the spec, their outputs unused: only the wires named below are compared
    mbnn_update_lane #(.HB(HB), .TK(TK), .PIXELS(1), .SR(SR)) dut (
        .clk(clk), .en(en), .lr_shift(lr_shift), .table_flat(table_flat), .away_flat(table_flat), .h(h), .x(x),
        .delta(delta), .r0(r0), .r1(r1));
    // (the away table: any driven value, the product lemma does not read it)
    ref_lane_u #(.HB(HB), .TK(TK), .PIXELS(1), .SR(SR)) spec_u (
        .lr_shift(lr_shift), .r0(r0), .table_flat(table_flat), .away_flat(table_flat), .h(h), .x(x), .delta(delta));

    logic signed [31:0] spec_grad_w;  // = spec_u.grad
    logic [23:0] lane_gmag_w;         // = dut.gmag
    logic lane_gpos_w, lane_gneg_w;   // = dut.gpos, dut.gneg

    logic [31:0] g_abs;
    always_comb begin
        g_abs = (spec_grad_w < 0) ? 32'(-spec_grad_w) : 32'(spec_grad_w);
        assert (g_abs < 32'd16777216);  // |delta * x| <= 32768 * 255: the lane's 24 bits hold it
        assert (lane_gmag_w == g_abs[23:0]);
        assert (lane_gpos_w == (spec_grad_w > 0));
        assert (lane_gneg_w == (spec_grad_w < 0));
    end
endmodule
