// Test wrapper: the two dot-product units at three SIMD widths in one Verilator build (builds are the
// slow part of the tests). Drive a/x/w/valid, read the six results combinationally.
module engine_dot_tb (
    input  logic [255:0] x,       // pixels (8 bits each) for the pixel dots
    input  logic [31:0]  a,       // bits for the XNOR-popcount dots
    input  logic [31:0]  w,
    input  logic [31:0]  valid,
    output logic signed [2:0]  dot_b1,
    output logic signed [4:0]  dot_b8,
    output logic signed [6:0]  dot_b32,
    output logic signed [10:0] dot_p1,
    output logic signed [13:0] dot_p8,
    output logic signed [15:0] dot_p32
);
    /* verilator lint_off UNUSEDSIGNAL */  // the 1- and 8-wide units use the low part of the inputs
    logic [255:0] x_u;
    assign x_u = x;
    /* verilator lint_on UNUSEDSIGNAL */
    mbnn_xnor_popcount #(.SIMD(1))  u_b1  (.a(a[0:0]), .w(w[0:0]), .valid(valid[0:0]), .dot(dot_b1));
    mbnn_xnor_popcount #(.SIMD(8))  u_b8  (.a(a[7:0]), .w(w[7:0]), .valid(valid[7:0]), .dot(dot_b8));
    mbnn_xnor_popcount #(.SIMD(32)) u_b32 (.a(a),      .w(w),      .valid(valid),      .dot(dot_b32));
    mbnn_pixel_dot     #(.SIMD(1))  u_p1  (.x(x_u[7:0]),  .w(w[0:0]), .valid(valid[0:0]), .dot(dot_p1));
    mbnn_pixel_dot     #(.SIMD(8))  u_p8  (.x(x_u[63:0]), .w(w[7:0]), .valid(valid[7:0]), .dot(dot_p8));
    mbnn_pixel_dot     #(.SIMD(32)) u_p32 (.x(x_u),       .w(w),      .valid(valid),      .dot(dot_p32));
endmodule
