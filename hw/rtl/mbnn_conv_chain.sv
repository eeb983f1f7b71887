// The datapath of a whole exported conv net (docs/FORMAT.md 3.3, version 2), shared by mbnn_conv_top (inference)
// and mbnn_conv_update_top (inference + on-chip learning of the dense layers), so the two cannot drift apart: per
// conv layer FINN's ConvolutionInputGenerator + MVAU, i.e. mbnn_swg feeding the dense dot engine mbnn_layer (one
// input vector per output position), mbnn_pool after the threshold where the layer pools, then mbnn_conv_flatten
// and the dense layers as in mbnn_chain. docs/HARDWARE.md "Conv top" has the schedule and the exact cycle formula
// (metabnn.backends.rtl.conv_cycles_formula).
//
// The model's shape comes from `mbnn_conv_model.svh`, written by metabnn.export.readmemh next to the hex files
// the memories start from (put that folder on the include path). L must be its MBNN_L (the tops pass it: the
// ports below are sized by it). Those files are the engine rows of readmemh.rtl_layers: a conv layer on sign bits
// with padding runs as paired lanes (MBNN_PAIR: synapse i is lanes 2i and 2i+1; the generator's element e with
// mask m becomes (e & m, e | ~m), so a padding tap adds 0, and the files hold 2M and 2C), the first dense layer's
// columns are in the stream's position-major order.
//
// Input : the image one uint8 pixel a beat, position-major (raster order y, x; a position's C channels one
//         after the other), i.e. the .mbnn input (CHW) transposed to HWC; for C = 1 it is the image as it is.
// Output: one beat per image: out_class = argmax of the scores (lowest index on a tie), out_score = its int64
//         score.
// in_bank: the normalization bank of every image (FORMAT.md section 5): read by every vector of every layer,
//         so change it only while busy is 0. Normalization is frozen (a conv layer's adapt_shift is 0;
//         export/readmemh.py refuses a conv model whose dense layers adapt).
// Schedule: each conv stage starts an image once its whole input map is in the generator (its line buffer holds
//         the whole map, ROWS = H): one stage after the other per image, so the cycle count is a sum; stage l
//         works on image n + 1 while stage l + 1 works on image n.
// What the tops need besides the stream:
//   wr_*[l]   : layer l's memory write port (mbnn_layer's wr_en / wr_sel / wr_addr / wr_data / wr_mask), in the
//               engine-row layout above, one per layer so an update unit can write sign words into its layer;
//   l_take[l] : dense layer l consumes an input beat this cycle, l_data[SIMD*l +: SIMD] its SIMD bits (for the
//               first dense layer the flattened map in stream order); 0 for the conv layers.
// Reset: synchronous, active high.
module mbnn_conv_chain #(
    parameter int SIMD = 32,   // elements per cycle in every layer: 1, 2, 4, 8, 16 or 32 (>= 2 with paired layers)
    parameter int PE = 4,      // neurons in parallel in every layer
    parameter int L = 2        // = MBNN_L of mbnn_conv_model.svh
) (
    input  logic                clk,
    input  logic                rst,
    input  logic                in_valid,
    output logic                in_ready,
    input  logic [7:0]          in_data,
    input  logic [7:0]          in_bank,
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
    output logic [SIMD*L-1:0]   l_data
);
    `include "mbnn_conv_model.svh"   // MBNN_L, MBNN_NC, MBNN_B, MBNN_K, MBNN_N, conv geometry, MBNN_HEXDIR

    if (MBNN_NC < 1 || MBNN_NC >= MBNN_L) begin : g_bad_shape
        $error("mbnn_conv_chain: needs 1..L-1 conv layers first, then dense layers (mbnn_conv_model.svh)");
    end
    if (L != MBNN_L) begin : g_bad_l
        $error("mbnn_conv_chain: L must be MBNN_L of mbnn_conv_model.svh");
    end

    // stream into stage l (index l): the pixel input for 0, SIMD sign bits for the others
    logic [MBNN_L-1:0] s_valid, s_ready;
    logic [SIMD-1:0] s_data [0:MBNN_L-1];
    logic [MBNN_L-1:0] l_busy, st_busy;
    /* verilator lint_off UNUSEDSIGNAL */
    logic [15:0] o_class [0:MBNN_L-1];
    logic [63:0] o_score [0:MBNN_L-1];
    /* verilator lint_on UNUSEDSIGNAL */

    assign s_valid[0] = in_valid;
    assign in_ready   = s_ready[0];
    assign s_data[0]  = '0;          // layer 0 reads in_data (pixels)
    assign busy       = (|l_busy) || (|st_busy);

    for (genvar l = 0; l < MBNN_L; l++) begin : g_layer
        localparam int LK = MBNN_K[32*l +: 32];
        localparam int LN = MBNN_N[32*l +: 32];
        localparam logic [7:0] DIGIT = (l < 10) ? 8'(48 + l) : 8'(87 + l);  // hex digit of l
        localparam int IWL = (l == 0) ? 8 : 1;
        logic            li_valid, li_ready;
        logic [IWL*SIMD-1:0] li_data;
        logic            lo_valid, lo_ready;
        /* verilator lint_off UNUSEDSIGNAL */  // the scores layer's sign output
        logic [SIMD-1:0] lo_data;
        /* verilator lint_on UNUSEDSIGNAL */

        if (l < MBNN_NC) begin : g_conv
            assign l_take[l] = 1'b0;
            assign l_data[SIMD*l +: SIMD] = '0;
            localparam int CIN  = MBNN_CIN[32*l +: 32];
            localparam int HIN  = MBNN_HIN[32*l +: 32];
            localparam int WIN  = MBNN_WIN[32*l +: 32];
            localparam int KS   = MBNN_KS[32*l +: 32];
            localparam int ST   = MBNN_S[32*l +: 32];
            localparam int PD   = MBNN_P[32*l +: 32];
            localparam int POOL = MBNN_POOL[32*l +: 32];
            localparam int PAIR = MBNN_PAIR[32*l +: 32];
            localparam int OH   = (HIN + 2 * PD - KS) / ST + 1;
            localparam int OW   = (WIN + 2 * PD - KS) / ST + 1;
            localparam int SIN  = (l == 0) ? 1 : SIMD;                 // input elements per beat
            localparam int IB   = (CIN + SIN - 1) / SIN;               // input beats per position
            localparam int NB   = HIN * WIN * IB;                      // input beats per image
            localparam int GS   = (PAIR != 0) ? SIMD / 2 : SIMD;       // generator elements per beat
            localparam int CW   = $clog2(NB + 1);
            if (PAIR != 0 && SIMD < 2) begin : g_bad_pair
                $error("mbnn_conv_chain: a paired conv layer needs SIMD >= 2");
            end
            logic [IWL*SIN-1:0] g_in;
            logic [IWL*GS-1:0] g_data;
            logic [GS-1:0]     g_mask;
            logic              g_valid, g_ready, g_last, g_end;
            // the gate: an image's vectors go to the layer once its whole map is in the generator
            logic [CW-1:0]     cnt;
            logic [1:0]        avail;    // complete images in the generator, not yet read out
            logic              in_take, in_done, vec_done, open;
            assign in_take  = s_valid[l] && s_ready[l];
            assign in_done  = in_take && (32'(cnt) == NB - 1);
            assign open     = (avail != 2'd0);
            assign vec_done = g_valid && g_ready && g_last && g_end;
            always_ff @(posedge clk) begin
                if (rst) begin
                    cnt <= '0; avail <= '0;
                end else begin
                    if (in_take) cnt <= in_done ? '0 : cnt + 1'b1;
                    avail <= avail + (in_done ? 2'd1 : 2'd0) - (vec_done ? 2'd1 : 2'd0);
                end
            end
            assign st_busy[l] = (cnt != '0) || (avail != 2'd0);
            if (l == 0) begin : g_pix
                assign g_in = in_data;
            end else begin : g_bits
                assign g_in = s_data[l];
            end
            mbnn_swg #(.C(CIN), .H(HIN), .W(WIN), .KS(KS), .S(ST), .P(PD), .IN_PIXELS(l == 0 ? 1 : 0),
                       .SIMD_IN(SIN), .SIMD(GS), .ROWS(HIN)) u_swg (
                .clk(clk), .rst(rst),
                .in_valid(s_valid[l]), .in_ready(s_ready[l]), .in_data(g_in),
                .out_valid(g_valid), .out_ready(g_ready), .out_data(g_data), .out_mask(g_mask),
                .out_last(g_last), .out_end(g_end));
            assign li_valid = g_valid && open;
            assign g_ready  = li_ready && open;
            if (PAIR != 0) begin : g_paired
                for (genvar e = 0; e < GS; e++) begin : g_lane
                    assign li_data[2*e]     = g_data[e] & g_mask[e];
                    assign li_data[2*e + 1] = g_data[e] | ~g_mask[e];
                end
            end else begin : g_plain
                // padding lanes are data 0: a padding pixel adds 0; without padding a mask 0 is past K only,
                // which the layer's LASTMASK drops
                assign li_data = g_data;
                /* verilator lint_off UNUSEDSIGNAL */
                logic [GS-1:0] mask_unused;
                /* verilator lint_on UNUSEDSIGNAL */
                assign mask_unused = g_mask;
            end
            if (POOL != 0) begin : g_pool
                /* verilator lint_off UNUSEDSIGNAL */
                logic p_last, p_end;
                /* verilator lint_on UNUSEDSIGNAL */
                mbnn_pool #(.C(LN), .H(OH), .W(OW), .SIMD(SIMD)) u_pool (
                    .clk(clk), .rst(rst),
                    .in_valid(lo_valid), .in_ready(lo_ready), .in_data(lo_data),
                    .out_valid(s_valid[l+1]), .out_ready(s_ready[l+1]), .out_data(s_data[l+1]),
                    .out_last(p_last), .out_end(p_end));
            end else begin : g_nopool
                assign s_valid[l+1] = lo_valid;
                assign lo_ready = s_ready[l+1];
                assign s_data[l+1] = lo_data;
            end
        end else begin : g_dense
            assign l_take[l] = li_valid && li_ready;
            assign l_data[SIMD*l +: SIMD] = li_data[SIMD-1:0];
            if (l == MBNN_NC) begin : g_flat
                mbnn_conv_flatten #(.C(MBNN_FC), .POS(MBNN_FPOS), .SIMD(SIMD)) u_flat (
                    .clk(clk), .rst(rst),
                    .in_valid(s_valid[l]), .in_ready(s_ready[l]), .in_data(s_data[l]),
                    .out_valid(li_valid), .out_ready(li_ready), .out_data(li_data), .busy(st_busy[l]));
            end else begin : g_chain
                assign li_valid = s_valid[l];
                assign s_ready[l] = li_ready;
                assign li_data = s_data[l];
                assign st_busy[l] = 1'b0;
            end
            if (l < MBNN_L - 1) begin : g_hidden
                assign s_valid[l+1] = lo_valid;
                assign lo_ready = s_ready[l+1];
                assign s_data[l+1] = lo_data;
            end else begin : g_out
                assign out_valid = lo_valid;
                assign lo_ready = out_ready;
                assign out_class = o_class[l];
                assign out_score = o_score[l];
            end
        end

        /* verilator lint_off UNUSEDSIGNAL */
        logic [7:0] o_bank;
        logic       o_adapt;
        /* verilator lint_on UNUSEDSIGNAL */
        mbnn_layer #(
            .K(LK), .N(LN), .SIMD(SIMD), .PE(PE),
            .IN_PIXELS(l == 0 ? 1 : 0), .OUT_SCORES(l == MBNN_L - 1 ? 1 : 0),
            .BANKS(MBNN_B), .ADAPT_SHIFT(0),
            .W_FILE({MBNN_HEXDIR, "/l", DIGIT, "_w.hex"}),
            .M_FILE({MBNN_HEXDIR, "/l", DIGIT, "_m.hex"}),
            .C_FILE({MBNN_HEXDIR, "/l", DIGIT, "_c.hex"}),
            .F_FILE({MBNN_HEXDIR, "/l", DIGIT, "_f.hex"}),
            .G_FILE({MBNN_HEXDIR, "/l", DIGIT, "_g.hex"}),
            .B_FILE({MBNN_HEXDIR, "/l", DIGIT, "_b.hex"})
        ) u_layer (
            .clk(clk), .rst(rst),
            .in_valid(li_valid), .in_ready(li_ready), .in_data(li_data),
            .in_bank(in_bank), .in_adapt(1'b0),
            .out_valid(lo_valid), .out_ready(lo_ready),
            .out_data(lo_data), .out_class(o_class[l]), .out_score(o_score[l]),
            .out_bank(o_bank), .out_adapt(o_adapt),
            .busy(l_busy[l]),
            .wr_en(wr_en[l]), .wr_sel(wr_sel[3*l +: 3]), .wr_addr(wr_addr[32*l +: 32]),
            .wr_data(wr_data[32*l +: 32]), .wr_mask(wr_mask[32*l +: 32])
        );
    end
endmodule
