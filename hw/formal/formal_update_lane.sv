// Formal harness: hw/rtl/mbnn_update_lane.sv equals the spec (ref_update_lane.sv) for every input.
//
// Every input (h, delta, x, lr_shift, the whole table, en; with SR the draw r0, r1) is free in every cycle. The spec is cut where it
// names u, and so is the proof, on the lane's own schedule:
//   1. stage A: one enabled cycle after a synapse is issued, the lane's stage-A registers hold the spec's h, |u|,
//      F[idx(h)] and, where |u| > 0, sgn(u) and "toward zero" (ref_lane_u on the issue cycle's inputs, registered);
//   2. stage B: one enabled cycle later the lane's outputs are ref_lane_apply of its stage-A registers (h' and
//      what follows from it: changed, flipped);
//   3. where |u| = 0, ref_lane_apply gives h whatever sgn(u) and "toward" say (formal_apply_zero.sv).
// So the lane's output is ref_lane_apply(ref_lane_u(inputs)): the spec (ref_lane_apply is a function, equal
// arguments give equal results). Cut there the solver never compares two different multipliers (the |u| * F of
// step 2 is one product of the same registers on both sides); uncut, no solver from pip finished in 10 minutes.
//
// Pixel lanes (PIXELS = 1) have a second pair of multipliers in stage A: the lane's unsigned |delta| * x (24
// bits) against the spec's signed 32-bit delta * x. The proof cuts there too, where the spec names grad:
//   0. for every delta and x, the lane's wires gmag, gpos, gneg equal |grad|, grad > 0, grad < 0 of the spec's
//      grad (spec_u.grad), and |grad| < 2^24 (formal_pixel_grad.sv, proven by ABC's BDDs: pixel_grad.ys);
//   then update_lane.sby's pix tasks drive the lane's gmag, gpos, gneg from the spec's grad (g_cut below) and
//   prove steps 1-3 on that lane, assuming |grad| < 2^24.
// By step 0 the replaced wires are the same functions of the inputs as the lane's own, so the lane with the
// replacement is the lane, and the assumption holds for every input (it restricts no input): steps 1-3 on it are
// steps 1-3 on the lane. The one product left is the spec's, read by both sides.
// Stochastic rounding (SR = 1, FORMAT.md 4.4): r0 and r1 are free inputs, like delta (the generator, which
// makes them, is a unit of its own). r0 enters stage A (the spec's first half reads it); r1 is used in stage B,
// so the lane carries r1 & 0x7FFF with its synapse in register A (r1_a). Step 1 also asserts that r1_a holds the
// issue cycle's r1 & 0x7FFF, and step 2 gives the spec's second half the issue cycle's r1 with its low 15 bits
// taken from r1_a: by step 1 that is the issue cycle's r1 itself. r1_a has no FORMAL port (the SR = 0 lane has
// no such register): update_lane.sby's sr tasks connect it after flattening, as the pixel cut's wires are.
// Away table (AWAY = 1, FORMAT.md 4.2.1): G is a free input like F. The lane has one multiplier and one table
// register (f_a) for both tables: it picks F[idx(h)] where the push is toward zero and G[idx(h)] where it is not.
// Step 1 then asserts that f_a is the spec's entry of the push's direction (F or G, where |u| > 0), and step 2
// gives the spec's second half f_a as both its F and its G: ref_lane_apply reads F toward zero and G otherwise,
// so by step 1 that is the spec's own F and G; the one product left is again of the same registers on both sides.
// The lane has no feedback (each register is fed by the inputs or by the stage before), so after two enabled
// cycles its state is a function of the inputs alone: a bounded check from the start, as deep as the latency
// plus cycles of `en` low in between, covers every reachable state (docs/HARDWARE.md, "Formal checks").
module formal_update_lane #(
    parameter int HB = 8,
    parameter int TK = 4,
    parameter int PIXELS = 0,
    parameter int SR = 0,
    parameter int AWAY = 0,
    parameter int XB = (PIXELS != 0) ? 8 : 1
) (
    input  logic                     clk,
    input  logic                     en,
    input  logic [4:0]               lr_shift,
    input  logic [(16 << TK) - 1:0]  table_flat,
    input  logic [(16 << TK) - 1:0]  away_flat,
    input  logic signed [HB-1:0]     h,
    input  logic [XB-1:0]            x,
    input  logic signed [15:0]       delta,
    input  logic [31:0]              r0,
    input  logic [31:0]              r1
);
    logic signed [HB-1:0] h_new, dut_h_a;
    logic changed, flipped, dut_uneg_a, dut_toward_a;
    logic [15:0] dut_umag_a, dut_f_a;
    mbnn_update_lane #(.HB(HB), .TK(TK), .PIXELS(PIXELS), .SR(SR), .AWAY(AWAY)) dut (
        .clk(clk), .en(en), .lr_shift(lr_shift), .table_flat(table_flat), .away_flat(away_flat), .h(h), .x(x), .delta(delta),
        .r0(r0), .r1(r1),
        .h_new(h_new), .changed(changed), .flipped(flipped),
        .fv_h_a(dut_h_a), .fv_umag_a(dut_umag_a), .fv_f_a(dut_f_a), .fv_uneg_a(dut_uneg_a),
        .fv_toward_a(dut_toward_a));

    // the spec, first half, on this cycle's inputs
    logic u_neg, toward;
    logic [15:0] u_mag, f, g, fg;
    ref_lane_u #(.HB(HB), .TK(TK), .PIXELS(PIXELS), .SR(SR)) spec_u (
        .lr_shift(lr_shift), .r0(r0), .table_flat(table_flat), .away_flat(away_flat), .h(h), .x(x), .delta(delta),
        .u_neg(u_neg), .u_mag(u_mag), .toward(toward), .f(f), .g(g));
    // the entry the spec scales |u| by: F toward zero, G away (AWAY); without G the lane keeps F either way
    assign fg = (AWAY != 0 && !toward) ? g : f;

    // PIXELS: the cut of step 0. spec_grad has no driver in this file: update_lane.sby connects it to spec_u.grad
    // after flattening (Yosys reads no hierarchical references) and the lane's gmag, gpos, gneg to the cut_*
    // wires. Left undriven, spec_grad stops the run (check -assert) or, as a free input, fails it: never a pass.
    if (PIXELS != 0) begin : g_cut
        logic signed [31:0] spec_grad;
        logic [31:0] g_abs;
        logic [23:0] cut_gmag;
        logic cut_gpos, cut_gneg;
        assign g_abs = (spec_grad < 0) ? 32'(-spec_grad) : 32'(spec_grad);
        assign cut_gmag = g_abs[23:0];
        assign cut_gpos = spec_grad > 0;
        assign cut_gneg = spec_grad < 0;
        always_comb assume (g_abs < 32'd16777216);  // proven for every input in step 0
    end

    // SR: the lane's r1_a (15 bits). lane_r1_a has no driver in this file: update_lane.sby connects it to
    // dut.g_r1.r1_a after flattening; left undriven it stops the run (check -assert) or fails it, as spec_grad.
    // SR = 0: nothing to carry, the spec's second half ignores r1.
    logic [31:0] dut_r1;  // the r1 the lane's stage A stands for: a_r1 with its low 15 bits from r1_a
    logic [31:0] a_r1;
    if (SR != 0) begin : g_sr
        logic [14:0] lane_r1_a;
        assign dut_r1 = {a_r1[31:15], lane_r1_a};
    end else begin : g_nr
        assign dut_r1 = 32'd0;
    end

    // ... registered as the lane's stage A
    logic signed [HB-1:0] a_h, b_h, dut_want, b_want;
    logic a_neg, a_toward;
    logic [15:0] a_mag, a_f;
    logic [1:0] filled = 2'd0;  // enabled cycles since the start, up to 2
    always_ff @(posedge clk) begin
        if (en) begin
            a_h <= h;
            a_neg <= u_neg;
            a_mag <= u_mag;
            a_toward <= toward;
            a_f <= fg;
            a_r1 <= r1;
            b_h <= dut_h_a;
            b_want <= dut_want;
            if (filled != 2'd2) filled <= filled + 2'd1;
        end
    end
    // the spec's second half on the lane's stage A, registered as its stage B
    ref_lane_apply #(.HB(HB), .SR(SR), .AWAY(AWAY)) spec_apply (
        .h(dut_h_a), .r1(dut_r1), .u_neg(dut_uneg_a), .u_mag(dut_umag_a), .toward(dut_toward_a), .f(dut_f_a),
        .g(dut_f_a), .h_new(dut_want));

    always_comb begin
        if (filled != 2'd0) begin
            // 1. stage A holds the spec's first half
            assert (dut_h_a == a_h);
            assert (dut_umag_a == a_mag);
            assert (dut_f_a == a_f || (AWAY != 0 && a_mag == 16'd0));  // AWAY: F or G by the push's direction
            assert (a_mag == 16'd0 || (dut_uneg_a == a_neg && dut_toward_a == a_toward));
            assert (dut_r1 == a_r1 || SR == 0);  // SR: r1_a == the issue cycle's r1 & 0x7FFF
        end
        if (filled == 2'd2) begin
            // 2. the outputs are the spec's second half of stage A
            assert (h_new == b_want);
            assert (changed == (b_want != b_h));
            assert (flipped == ((b_want >= 0) != (b_h >= 0)));
        end
    end
endmodule
