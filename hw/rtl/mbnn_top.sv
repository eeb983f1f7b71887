// A whole exported MLP (docs/FORMAT.md section 3) as a chain of mbnn_layer engines, one per layer,
// streaming into each other (layer l+1 works on image n while layer l works on image n+1).
//
// The model's shape comes from `mbnn_model.svh`, written by metabnn.export.readmemh next to the hex
// files it initialises the memories from (docs/FORMAT.md section 7); put that folder on the include path.
//
// Input : ceil(K0/SIMD) beats of SIMD uint8 pixels (pixel i of a beat at in_data[8i +: 8]); in_bank and
//         in_adapt travel with the image (sampled with its first beat by every layer in turn).
// Output: one beat per image: out_class = argmax of the scores (lowest index on a tie), out_score = its
//         int64 score.
// Memory port: mem_layer selects the layer, then mbnn_layer's wr_sel / wr_addr / wr_data / wr_mask.
// Reset: synchronous, active high.
module mbnn_top #(
    parameter int SIMD = 32,   // input elements per cycle in every layer: 1, 2, 4, 8, 16 or 32
    parameter int PE = 4       // neurons in parallel in every layer
) (
    input  logic                clk,
    input  logic                rst,
    input  logic                in_valid,
    output logic                in_ready,
    input  logic [8*SIMD-1:0]   in_data,
    input  logic [7:0]          in_bank,
    input  logic                in_adapt,
    output logic                out_valid,
    input  logic                out_ready,
    output logic [15:0]         out_class,
    output logic [63:0]         out_score,
    output logic                busy,
    input  logic                mem_we,
    input  logic [3:0]          mem_layer,
    input  logic [2:0]          mem_sel,
    input  logic [31:0]         mem_addr,
    input  logic [31:0]         mem_wdata,
    input  logic [31:0]         mem_wmask
);
    `include "mbnn_model.svh"   // MBNN_L, MBNN_B, MBNN_K, MBNN_N, MBNN_ADAPT, MBNN_HEXDIR

    // stream between layer l-1 and layer l (index l); the pixel input is the widest (8*SIMD).
    // Unused by design: the upper 7*SIMD bits of a hidden layer's slot, and the bank/adapt
    // sideband after the last layer.
    logic [MBNN_L:0]           s_valid, s_ready;
    /* verilator lint_off UNUSEDSIGNAL */
    logic [MBNN_L:0]           s_adapt;
    logic [8*SIMD*MBNN_L-1:0]  s_data;
    logic [8*(MBNN_L+1)-1:0]   s_bank;
    /* verilator lint_on UNUSEDSIGNAL */
    logic [MBNN_L-1:0]         l_busy;

    assign s_valid[0] = in_valid;
    assign in_ready   = s_ready[0];
    assign s_data[8*SIMD-1:0] = in_data;
    assign s_bank[7:0] = in_bank;
    assign s_adapt[0] = in_adapt;
    assign s_ready[MBNN_L] = out_ready;
    assign out_valid  = s_valid[MBNN_L];
    assign busy       = |l_busy;

    for (genvar l = 0; l < MBNN_L; l++) begin : g_layer
        localparam int LK = MBNN_K[32*l +: 32];
        localparam int LN = MBNN_N[32*l +: 32];
        localparam int LA = 32'(MBNN_ADAPT[8*l +: 8]);
        localparam int IWL = (l == 0) ? 8 : 1;
        localparam logic [7:0] DIGIT = (l < 10) ? 8'(48 + l) : 8'(87 + l);  // hex digit of l
        // a SIGN layer drives o_data, the SCORES layer o_class/o_score; the other outputs are unused
        /* verilator lint_off UNUSEDSIGNAL */
        logic [SIMD-1:0] o_data;
        logic [15:0]     o_class;
        logic [63:0]     o_score;
        /* verilator lint_on UNUSEDSIGNAL */
        mbnn_layer #(
            .K(LK), .N(LN), .SIMD(SIMD), .PE(PE),
            .IN_PIXELS(l == 0 ? 1 : 0), .OUT_SCORES(l == MBNN_L - 1 ? 1 : 0),
            .BANKS(MBNN_B), .ADAPT_SHIFT(LA),
            .W_FILE({MBNN_HEXDIR, "/l", DIGIT, "_w.hex"}),
            .M_FILE({MBNN_HEXDIR, "/l", DIGIT, "_m.hex"}),
            .C_FILE({MBNN_HEXDIR, "/l", DIGIT, "_c.hex"}),
            .F_FILE({MBNN_HEXDIR, "/l", DIGIT, "_f.hex"}),
            .G_FILE({MBNN_HEXDIR, "/l", DIGIT, "_g.hex"}),
            .B_FILE({MBNN_HEXDIR, "/l", DIGIT, "_b.hex"})
        ) u_layer (
            .clk(clk), .rst(rst),
            .in_valid(s_valid[l]), .in_ready(s_ready[l]),
            .in_data(s_data[8*SIMD*l +: IWL*SIMD]),
            .in_bank(s_bank[8*l +: 8]), .in_adapt(s_adapt[l]),
            .out_valid(s_valid[l+1]), .out_ready(s_ready[l+1]),
            .out_data(o_data), .out_class(o_class), .out_score(o_score),
            .out_bank(s_bank[8*(l+1) +: 8]), .out_adapt(s_adapt[l+1]),
            .busy(l_busy[l]),
            .wr_en(mem_we && mem_layer == 4'(l)), .wr_sel(mem_sel), .wr_addr(mem_addr),
            .wr_data(mem_wdata), .wr_mask(mem_wmask)
        );
        if (l < MBNN_L - 1) begin : g_bits
            // a hidden layer's beat is SIMD bits; the upper part of the 8*SIMD slot is unused
            assign s_data[8*SIMD*(l+1) +: 8*SIMD] = {{(7*SIMD){1'b0}}, o_data};
        end else begin : g_out
            assign out_class = o_class;
            assign out_score = o_score;
        end
    end
endmodule
