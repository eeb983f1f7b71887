// Formal harness, step 3 of formal_update_lane.sv's proof: with |u| = 0 the spec's second half (ref_lane_apply)
// leaves h as it is, whatever sgn(u) and "toward zero" say, for every h and table entry (and with SR, every r1:
// (0 * F + (r1 & 0x7FFF)) >> 15 is 0 too; with AWAY, every away entry G as well). Combinational.
module formal_apply_zero #(
    parameter int HB = 8,
    parameter int SR = 0,
    parameter int AWAY = 0
) (
    input logic signed [HB-1:0] h,
    input logic [31:0]          r1,
    input logic                 u_neg,
    input logic                 toward,
    input logic [15:0]          f,
    input logic [15:0]          g
);
    logic signed [HB-1:0] h_new;
    ref_lane_apply #(.HB(HB), .SR(SR), .AWAY(AWAY)) spec (
        .h(h), .r1(r1), .u_neg(u_neg), .u_mag(16'd0), .toward(toward), .f(f), .g(g), .h_new(h_new));
    always_comb assert (h_new == h);
endmodule
