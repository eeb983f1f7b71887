// XNOR-popcount dot product of SIMD binary elements (docs/FORMAT.md section 2).
//
// Bit 1 = +1, bit 0 = -1. Element i counts only where valid[i] is 1 (the padding of the last
// chunk of a vector), so a chunk's contribution to the accumulator is
//     dot = matches - mismatches = 2 * popcount(~(a ^ w) & valid) - popcount(valid).
// Summed over all chunks this equals FORMAT.md's K - 2 * popcount(a XOR w). Combinational.
module mbnn_xnor_popcount #(
    parameter int SIMD = 32
) (
    input  logic [SIMD-1:0]                   a,
    input  logic [SIMD-1:0]                   w,
    input  logic [SIMD-1:0]                   valid,
    output logic signed [$clog2(SIMD+1)+1:0]  dot
);
    localparam int CW = $clog2(SIMD + 1) + 2;  // holds -SIMD..SIMD

    logic [SIMD-1:0] match;
    logic [CW-1:0]   n_match;
    logic [CW-1:0]   n_valid;

    assign match = ~(a ^ w) & valid;

    always_comb begin
        n_match = '0;
        n_valid = '0;
        for (int i = 0; i < SIMD; i++) begin
            n_match = n_match + {{(CW - 1){1'b0}}, match[i]};
            n_valid = n_valid + {{(CW - 1){1'b0}}, valid[i]};
        end
    end

    assign dot = $signed((n_match << 1) - n_valid);
endmodule
