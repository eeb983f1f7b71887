// Formal harness: hw/rtl/mbnn_xnor_popcount.sv equals its definition (docs/FORMAT.md section 2) for every input:
// the dot of the valid lanes of two +-1 vectors (bit 1 = +1), i.e. +1 for every valid lane where a and w agree and
// -1 for every valid lane where they differ, written here as that sum and nothing cleverer. Combinational.
module formal_xnor_popcount #(
    parameter int SIMD = 32
) (
    input logic [SIMD-1:0] a,
    input logic [SIMD-1:0] w,
    input logic [SIMD-1:0] valid
);
    logic signed [$clog2(SIMD+1)+1:0] dot;
    mbnn_xnor_popcount #(.SIMD(SIMD)) dut (.a(a), .w(w), .valid(valid), .dot(dot));

    logic signed [31:0] want;
    always_comb begin
        want = 0;
        for (int i = 0; i < SIMD; i++) begin
            if (valid[i]) want = (a[i] == w[i]) ? want + 1 : want - 1;
        end
        assert (32'(dot) == want);  // sign-extended: the unit's width is just wide enough for -SIMD..SIMD
    end
endmodule
