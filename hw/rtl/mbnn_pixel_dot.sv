// First-layer dot product: SIMD uint8 pixels against SIMD binary weights (docs/FORMAT.md section 3,
// input kind PIXELS): sum of +x_i where w_i = 1, -x_i where w_i = 0, 0 where valid_i = 0 (padding).
// Combinational; |dot| <= 255 * SIMD.
module mbnn_pixel_dot #(
    parameter int SIMD = 32
) (
    input  logic [8*SIMD-1:0]                 x,
    input  logic [SIMD-1:0]                   w,
    input  logic [SIMD-1:0]                   valid,
    output logic signed [$clog2(SIMD+1)+9:0]  dot
);
    localparam int DW = $clog2(SIMD + 1) + 10;  // holds -255*SIMD..255*SIMD

    always_comb begin
        dot = '0;
        for (int i = 0; i < SIMD; i++) begin
            if (valid[i]) begin
                if (w[i]) dot = dot + $signed({{(DW - 8){1'b0}}, x[8*i +: 8]});
                else      dot = dot - $signed({{(DW - 8){1'b0}}, x[8*i +: 8]});
            end
        end
    end
endmodule
