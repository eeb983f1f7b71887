// The exported MLP's layers as a chain of mbnn_layer engines streaming into each other (layer l+1 works on
// image n while layer l works on image n+1): the datapath that mbnn_top (inference) and mbnn_update_top
// (inference + on-chip learning) share, so the two tops cannot drift apart.
//
// The model's shape comes from `mbnn_model.svh` (metabnn.export.readmemh, next to the hex files the memories
// start from; put that folder on the include path). L must be its MBNN_L (the tops pass it: the ports below
// are sized by it, and a port list cannot see a localparam the body includes).
//
// Stream in/out as mbnn_top's (docs/HARDWARE.md). What the update top needs besides:
//   wr_*[l]   : layer l's memory write port (mbnn_layer's wr_en / wr_sel / wr_addr / wr_data / wr_mask), one
//               per layer so the update units can write sign words while the host port is elsewhere;
//   l_take[l] : layer l consumes an input beat this cycle, l_data[8*SIMD*l +: 8*SIMD] (pixels for layer 0,
//               the SIMD sign bits of layer l-1 in the low bits for the others).
module mbnn_chain #(
    parameter int SIMD = 32,   // input elements per cycle in every layer: 1, 2, 4, 8, 16 or 32
    parameter int PE = 4,      // neurons in parallel in every layer
    parameter int L = 1,       // = MBNN_L of mbnn_model.svh
    parameter int SPRAM = 0,   // bit l: layer l's sign words in iCE40 UP5K SPRAM (empty at start: the host writes them)
    parameter int SHALLOW = 0  // 1: every layer's pipeline for a slow clock (mbnn_layer's SHALLOW; same cycle count)
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
    input  logic [L-1:0]        wr_en,
    input  logic [3*L-1:0]      wr_sel,
    input  logic [32*L-1:0]     wr_addr,
    input  logic [32*L-1:0]     wr_data,
    input  logic [32*L-1:0]     wr_mask,
    output logic [L-1:0]        l_take,
    output logic [8*SIMD*L-1:0] l_data
);
    `include "mbnn_model.svh"   // MBNN_L, MBNN_B, MBNN_K, MBNN_N, MBNN_ADAPT, MBNN_HEXDIR

    if (L != MBNN_L) begin : g_bad_l
        $error("mbnn_chain: L must be MBNN_L of mbnn_model.svh");
    end

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
    assign l_take     = s_valid[MBNN_L-1:0] & s_ready[MBNN_L-1:0];
    assign l_data     = s_data;

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
            .BANKS(MBNN_B), .ADAPT_SHIFT(LA), .W_SPRAM((SPRAM >> l) & 1), .SHALLOW(SHALLOW),
            .W_FILE({MBNN_HEXDIR, "/l", DIGIT, "_w.hex"}),
`ifdef SYNTHESIS  // Yosys cannot rearrange l<l>_w.hex into the wide layout at PE > 1: metabnn fpga writes it
            .WPE_FILE((PE > 1) ? {MBNN_HEXDIR, "/l", DIGIT, "_wpe.hex"} : ""),
`endif
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
            .wr_en(wr_en[l]), .wr_sel(wr_sel[3*l +: 3]), .wr_addr(wr_addr[32*l +: 32]),
            .wr_data(wr_data[32*l +: 32]), .wr_mask(wr_mask[32*l +: 32])
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
