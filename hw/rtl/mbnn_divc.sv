// q = a / D and r = a % D for a constant D, exact for every a < 2^AW, without a divider: q is
// (a * R) >> S with R = ceil(2^S / D), S = AW + ceil(log2 D). R*D - 2^S < D <= 2^(S-AW), so the
// product overshoots a/D by less than 1/D and the floor is exact. One constant multiply (a DSP or a
// few adders) and one for r: the write port of mbnn_layer's sign memory turns a FORMAT word address
// j*W + w into (group, lane, word) with it, where Yosys would build a full divider array for `/`.
module mbnn_divc #(
    parameter int D = 3,    // the divisor, >= 1
    parameter int AW = 8    // width of a
) (
    input  logic [AW-1:0] a,
    output logic [AW-1:0] q,
    output logic [AW-1:0] r
);
    localparam int S = AW + $clog2(D);
    localparam longint unsigned R = ((64'd1 << S) + 64'(D) - 64'd1) / 64'(D);  // < 2^(AW+1)
    localparam int PW = 2 * AW + 1;

    if (D < 1 || S > 62) begin : g_bad
        $error("mbnn_divc: D must be >= 1 and AW + clog2(D) <= 62");
    end

    /* verilator lint_off UNUSEDSIGNAL */  // the bits below 2^S are the fraction, the top ones are zero
    logic [PW-1:0] prod;
    /* verilator lint_on UNUSEDSIGNAL */
    assign prod = PW'(a) * PW'(R);
    assign q = AW'(prod >> S);
    assign r = a - AW'(PW'(q) * PW'(D));
endmodule
