// docs/FORMAT.md 4.4's generator, Threefry-2x32 with 20 rounds, written from the text of the spec and nothing
// else (not from hw/rtl/mbnn_threefry.sv): the spec's loop as it reads, u32 arithmetic wrapping, no pipeline.
//
//   ks = (k0, k1, k0 ^ k1 ^ 0x1BD11BDA);  R = (13, 15, 26, 6, 17, 29, 16, 24)
//   x0 = c0 + ks[0];  x1 = c1 + ks[1]
//   for r in 0 .. 19:
//       x0 = x0 + x1;  x1 = rotl(x1, R[r mod 8]);  x1 = x1 ^ x0
//       if r mod 4 == 3:  s = (r + 1) / 4;  x0 = x0 + ks[s mod 3];  x1 = x1 + ks[(s + 1) mod 3] + s
//   return (x0, x1)
module ref_threefry (
    input  logic [31:0] c0,
    input  logic [31:0] c1,
    input  logic [31:0] k0,
    input  logic [31:0] k1,
    output logic [31:0] x0,
    output logic [31:0] x1
);
    // R[i] at bits [32 i +: 32] and ks[i] at [32 i +: 32]: packed, which every Yosys reads in always_comb
    localparam logic [255:0] R = {32'd24, 32'd16, 32'd29, 32'd17, 32'd6, 32'd26, 32'd15, 32'd13};
    logic [95:0] ks;
    int s;
    always_comb begin
        ks = {k0 ^ k1 ^ 32'h1BD11BDA, k1, k0};
        x0 = c0 + ks[0 +: 32];
        x1 = c1 + ks[32 +: 32];
        for (int r = 0; r < 20; r++) begin
            x0 = x0 + x1;
            x1 = (x1 << R[32 * (r % 8) +: 32]) | (x1 >> (32 - R[32 * (r % 8) +: 32]));  // rotl(x1, R[r mod 8])
            x1 = x1 ^ x0;
            if (r % 4 == 3) begin
                s = (r + 1) / 4;
                x0 = x0 + ks[32 * (s % 3) +: 32];
                x1 = x1 + ks[32 * ((s + 1) % 3) +: 32] + 32'(s);
            end
        end
    end
endmodule
