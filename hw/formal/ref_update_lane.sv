// docs/FORMAT.md 4.3 step 5 for one synapse, written from the text of the spec and nothing else (not from
// hw/rtl/mbnn_update_lane.sv): plain signed 32-bit integers, the spec's order of operations, no pipeline.
// SR = 1: the same step with the two stochastic roundings of FORMAT.md 4.4 (its text, also not the RTL's).
//
//   grad = delta * x                                  (int32; x = pixel 0..255 or +-1, bit 1 = +1)
//   u    = sat(-rsr(grad, lr_shift), -65535, 65535)
//   if (h > 0 and u < 0) or (h < 0 and u > 0):  u = sgn(u) * ((|u| * F[idx(h)] + 16384) >> 15)
//   h'   = sat(h + u, -2^(b-1), 2^(b-1) - 1)
//   rsr(v, 0) = v, rsr(v, s) = sgn(v) * ((|v| + 2^(s-1)) >> s);  idx(h) = min(|h| >> (b-1-k), 2^k - 1)
// SR = 1 (4.4, s = lr_shift, (r0, r1) the synapse's draw, here free inputs: the generator is another unit):
//   q = (|grad| + (r0 & (2^s - 1))) >> s  (64-bit intermediate);  u = sat(-sgn(grad) * q, -65535, 65535)
//   toward zero:  u = sgn(u) * ((|u| * F[idx(h)] + (r1 & 0x7FFF)) >> 15)
// AWAY = 1 (4.2.1, the layer has the away table G; 4.3 step 5's and 4.4's "else" branch):
//   else:         u = sgn(u) * ((|u| * G[idx(h)] + c) >> 15),  c = 16384, or r1 & 0x7FFF with SR
//
// Two modules, cut where the spec names u: ref_lane_u gives u (as sgn(u), |u|), the table entries F[idx(h)] and
// G[idx(h)] and whether u moves h toward zero; ref_lane_apply gives h' from h, u, F and G. Their composition is the step above;
// the formal harness (formal_update_lane.sv) composes them and proves the RTL lane equal to it.
module ref_lane_u #(
    parameter int HB = 8,
    parameter int TK = 4,
    parameter int PIXELS = 0,
    parameter int SR = 0,      // 1: FORMAT.md 4.4's rounding of the shift by r0; 0: 4.3's rsr, r0 unused
    parameter int XB = (PIXELS != 0) ? 8 : 1
) (
    input  logic [4:0]               lr_shift,
    input  logic [31:0]              r0,
    input  logic [(16 << TK) - 1:0]  table_flat,  // F[i] at bits [16 i +: 16]
    input  logic [(16 << TK) - 1:0]  away_flat,   // G[i] at bits [16 i +: 16] (read by ref_lane_apply's AWAY only)
    input  logic signed [HB-1:0]     h,
    input  logic [XB-1:0]            x,
    input  logic signed [15:0]       delta,
    output logic                     u_neg,       // u < 0
    output logic [15:0]              u_mag,       // |u| (<= 65535 after the saturation)
    output logic                     toward,      // (h > 0 and u < 0) or (h < 0 and u > 0)
    output logic [15:0]              f,           // F[idx(h)]
    output logic [15:0]              g            // G[idx(h)]
);
    localparam int TSHIFT = HB - 1 - TK;
    logic signed [31:0] xi, grad, g_abs, r, u, hh, i;
    logic signed [63:0] q, u64;  // 4.4's 64-bit intermediate (q < 2^32: |grad| < 2^31 plus r0's low s bits)
    always_comb begin
        hh = 32'(h);  // sign-extended
        xi = (PIXELS != 0) ? $signed({24'd0, x}) : (x[0] ? 32'sd1 : -32'sd1);
        grad = 32'(delta) * xi;
        g_abs = (grad < 0) ? -grad : grad;
        r = (lr_shift == 5'd0) ? g_abs : ((g_abs + (32'sd1 <<< (lr_shift - 5'd1))) >>> lr_shift);  // |rsr|
        u = (grad < 0) ? r : -r;  // -rsr(grad, lr_shift)
        if (u > 32'sd65535) u = 32'sd65535;
        if (u < -32'sd65535) u = -32'sd65535;
        // 4.4 (SR = 1) in place of rsr
        q = (64'(g_abs) + $signed(64'(r0) & ((64'd1 << lr_shift) - 64'd1))) >>> lr_shift;
        u64 = (grad > 0) ? -q : (grad < 0) ? q : 64'sd0;  // -sgn(grad) * q
        if (u64 > 64'sd65535) u64 = 64'sd65535;
        if (u64 < -64'sd65535) u64 = -64'sd65535;
        if (SR != 0) u = u64[31:0];
        u_neg = u < 0;
        u_mag = (u < 0) ? 16'(-u) : 16'(u);
        toward = (hh > 0 && u < 0) || (hh < 0 && u > 0);
        i = ((hh < 0) ? -hh : hh) >>> TSHIFT;
        if (i > (32'sd1 <<< TK) - 1) i = (32'sd1 <<< TK) - 1;
        f = table_flat[16 * i[11:0] +: 16];
        g = away_flat[16 * i[11:0] +: 16];
    end
endmodule

module ref_lane_apply #(
    parameter int HB = 8,
    parameter int SR = 0,      // 1: FORMAT.md 4.4's rounding of the product by r1; 0: 4.3's half up, r1 unused
    parameter int AWAY = 0     // 1: the layer has the away table G (4.2.1); 0: g unused
) (
    input  logic signed [HB-1:0]  h,
    input  logic [31:0]           r1,
    input  logic                  u_neg,
    input  logic [15:0]           u_mag,
    input  logic                  toward,
    input  logic [15:0]           f,
    input  logic [15:0]           g,
    output logic signed [HB-1:0]  h_new
);
    localparam int HMAX = (1 << (HB - 1)) - 1;
    localparam int HMIN = -HMAX - 1;
    logic signed [31:0] mag, sum;
    logic [31:0] rnd;
    always_comb begin
        // |u| * F[idx(h)] + 16384 >> 15 toward zero (|u| * F < 2^31: an unsigned 32-bit product), or
        // + (r1 & 0x7FFF) with SR (< 2^31 + 2^15: still 32 bits); else with G the same with G[idx(h)]
        rnd = (SR != 0) ? (r1 & 32'h7FFF) : 32'd16384;
        if (toward) mag = $signed((32'(u_mag) * 32'(f) + rnd) >> 15);
        else if (AWAY != 0) mag = $signed((32'(u_mag) * 32'(g) + rnd) >> 15);
        else mag = $signed(32'(u_mag));
        sum = 32'(h) + (u_neg ? -mag : mag);
        if (sum > HMAX) sum = HMAX;
        if (sum < HMIN) sum = HMIN;
        h_new = sum[HB-1:0];
    end
endmodule
