// A whole exported conv net that keeps learning its dense layers on chip (docs/FORMAT.md 4.5 "Frozen layers":
// the conv layers stay frozen): the datapath of mbnn_conv_top (mbnn_conv_chain.sv: per conv layer mbnn_swg ->
// mbnn_layer [-> mbnn_pool], mbnn_conv_flatten, the dense layers) plus one metaplastic update unit
// (mbnn_update.sv) per dense layer, as mbnn_update_top adds them to the MLP's chain.
//
// Forward: exactly mbnn_conv_top's stream (one uint8 pixel a beat, position-major; one result beat per image;
// frozen normalization). Every dense layer's unit records the input beats its layer consumed (the chain's l_take /
// l_data taps), so after an image the units hold that image's layer inputs: for the first dense layer the
// flattened map in the stream's order (position-major, (y W + x) C + c), for the others the sign bits the engine
// computed. LANES = SIMD, so one beat is one chunk of the update unit. The first dense layer's hidden weights are
// therefore held in that same column order as its engine's weights (readmemh.rtl_layers): the host permutes them
// (metabnn.backends.rtl_native). With stochastic rounding the units count synapses in their own column order, not
// FORMAT.md's, so the host refuses SR on that layer (the SR bit of a later dense layer is as in mbnn_update_top).
//
// Learning step, with the engines idle (`busy` low): stream the image (scores out), the host writes every dense
// layer's deltas (upd_sel selects the layer: its index in the model, NC .. L-1), pulse upd_start: every dense
// layer's unit runs at once and writes its new sign bits straight into its engine's weight memory (sel 0,
// masked 32-bit words in FORMAT order, chunk-aligned); upd_busy falls when the last is done. Cycles of that:
// max over the dense layers of N_l * ceil(K_l / SIMD) * SIMD / ULANES + 3 + 4 UPIPE (+ 20 / TF_STAGE - 1 on an
// SR layer). The conv layers have no unit: only the host's memory port writes them.
// Host ports as mbnn_update_top's; a upd_sel that names a conv layer reads zeros and writes nothing.
// HB and TK are one value for the dense layers. Reset: synchronous, active high, as everywhere in hw/.
module mbnn_conv_update_top #(
    parameter int SIMD = 8,    // elements per cycle in every layer = update lanes: 1, 2, 4, 8, 16 or 32
    parameter int PE = 4,      // neurons in parallel in every engine
    parameter int HB = 8,      // hidden weight bits b (dense layers)
    parameter int TK = 4,      // f_meta table bits k (dense layers)
    parameter int SR = 0,      // bit l: dense layer l's update unit has the stochastic rounding hardware
    parameter int TF_STAGE = 4, // Threefry rounds per pipeline stage in those units
    parameter int ULANES = SIMD, // update lanes built per unit (divides SIMD): a chunk in SIMD / ULANES cycles
    parameter int UPIPE = 0    // 1: the units' pipelined lanes (mbnn_update.sv PIPE)
) (
    input  logic                clk,
    input  logic                rst,
    // inference stream (as mbnn_conv_top)
    input  logic                in_valid,
    output logic                in_ready,
    input  logic [7:0]          in_data,
    input  logic [7:0]          in_bank,
    /* verilator lint_off UNUSEDSIGNAL */
    input  logic                in_adapt,   // ignored: frozen normalization
    /* verilator lint_on UNUSEDSIGNAL */
    output logic                out_valid,
    input  logic                out_ready,
    output logic [15:0]         out_class,
    output logic [63:0]         out_score,
    output logic                busy,
    // engine memory port (as mbnn_conv_top)
    input  logic                mem_we,
    input  logic [3:0]          mem_layer,
    input  logic [2:0]          mem_sel,
    input  logic [31:0]         mem_addr,
    input  logic [31:0]         mem_wdata,
    input  logic [31:0]         mem_wmask,
    // learning: host side of the dense layers' update units (as mbnn_update_top)
    input  logic [3:0]          upd_sel,
    /* verilator lint_off UNUSEDSIGNAL */  // address bits above a layer's depth are ignored
    input  logic                lr_we,
    input  logic [4:0]          lr_data,
    input  logic                sr_we,
    input  logic                sr_rnd,
    input  logic [31:0]         sr_seed,
    input  logic [31:0]         sr_step,
    input  logic                tbl_we,
    input  logic [11:0]         tbl_addr,
    input  logic [15:0]         tbl_data,
    input  logic                d_we,
    input  logic [15:0]         d_addr,
    input  logic signed [15:0]  d_data,
    input  logic                h_we,
    input  logic                h_re,
    input  logic [31:0]         h_addr,
    /* verilator lint_on UNUSEDSIGNAL */
    input  logic [SIMD*HB-1:0]  h_wdata,
    output logic [SIMD*HB-1:0]  h_rdata,
    output logic                h_rvalid,
    input  logic                upd_start,
    output logic                upd_busy,
    output logic [31:0]         n_changed,
    output logic [31:0]         n_flipped,
    output logic [31:0]         sr_step_q
);
    /* verilator lint_off UNUSEDPARAM */  // mbnn_conv_chain needs the whole shape, this top part of it
    `include "mbnn_conv_model.svh"   // MBNN_L, MBNN_NC, MBNN_B, MBNN_K, MBNN_N, conv geometry, MBNN_HEXDIR
    /* verilator lint_on UNUSEDPARAM */

    localparam int CPW = 32 / SIMD;  // update chunks per 32-bit weight word

    logic [MBNN_L-1:0]      u_busy, u_hrv;
    logic [SIMD*HB-1:0]     u_hrd [MBNN_L];
    logic [31:0]            u_chg [MBNN_L];
    logic [31:0]            u_flp [MBNN_L];
    logic [31:0]            u_srs [MBNN_L];
    logic [MBNN_L-1:0]      wr_en;
    logic [3*MBNN_L-1:0]    wr_sel;
    logic [32*MBNN_L-1:0]   wr_addr, wr_data, wr_mask;
    /* verilator lint_off UNUSEDSIGNAL */  // the conv layers' taps are 0
    logic [MBNN_L-1:0]      l_take;
    logic [SIMD*MBNN_L-1:0] l_data;
    /* verilator lint_on UNUSEDSIGNAL */

    mbnn_conv_chain #(.SIMD(SIMD), .PE(PE), .L(MBNN_L)) u_chain (
        .clk(clk), .rst(rst),
        .in_valid(in_valid), .in_ready(in_ready), .in_data(in_data), .in_bank(in_bank),
        .out_valid(out_valid), .out_ready(out_ready), .out_class(out_class), .out_score(out_score), .busy(busy),
        .wr_en(wr_en), .wr_sel(wr_sel), .wr_addr(wr_addr), .wr_data(wr_data), .wr_mask(wr_mask),
        .l_take(l_take), .l_data(l_data)
    );
    assign upd_busy = |u_busy;

    for (genvar l = 0; l < MBNN_L; l++) begin : g_layer
        logic host_we;
        assign host_we = mem_we && mem_layer == 4'(l);
        if (l < MBNN_NC) begin : g_frozen
            // a conv layer: the host's memory port only
            assign wr_en[l] = host_we;
            assign wr_sel[3*l +: 3] = mem_sel;
            assign wr_addr[32*l +: 32] = mem_addr;
            assign wr_data[32*l +: 32] = mem_wdata;
            assign wr_mask[32*l +: 32] = mem_wmask;
            assign u_busy[l] = 1'b0;
            assign u_hrv[l] = 1'b0;
            assign u_hrd[l] = '0;
            assign u_chg[l] = '0;
            assign u_flp[l] = '0;
            assign u_srs[l] = '0;
        end else begin : g_learn
            localparam int LK = MBNN_K[32*l +: 32];
            localparam int LN = MBNN_N[32*l +: 32];
            localparam int LG = (LK + SIMD - 1) / SIMD;          // chunks (= input beats) per row
            localparam int LW = (LK + 31) / 32;                  // weight words per row
            localparam int LAW = (LN * LG > 1) ? $clog2(LN * LG) : 1;
            localparam int LGW = (LG > 1) ? $clog2(LG) : 1;
            localparam int LNW = (LN > 1) ? $clog2(LN) : 1;
            /* verilator lint_off UNUSEDSIGNAL */
            logic [LAW-1:0]  sg_addr;  // chunk address: the engine wants (row, word) instead
            logic            u_done;   // upd_busy is what the host watches
            /* verilator lint_on UNUSEDSIGNAL */
            logic            sg_we;
            logic [LNW-1:0]  sg_row;
            logic [LGW-1:0]  sg_chunk;
            logic [SIMD-1:0] sg_data;
            logic [4:0]      off;  // bit offset of the chunk in its word
            assign off = (CPW > 1) ? 5'((32'(sg_chunk) % CPW) * SIMD) : 5'd0;
            // the unit's sign writes while it runs (masked words in FORMAT order), else the host's port
            assign wr_en[l] = u_busy[l] ? sg_we : host_we;
            assign wr_sel[3*l +: 3] = u_busy[l] ? 3'd0 : mem_sel;
            assign wr_addr[32*l +: 32] = u_busy[l] ? 32'(sg_row) * LW + 32'(sg_chunk) / CPW : mem_addr;
            assign wr_data[32*l +: 32] = u_busy[l] ? 32'(sg_data) << off : mem_wdata;
            assign wr_mask[32*l +: 32] = u_busy[l]
                ? ((SIMD == 32) ? 32'hFFFF_FFFF : ((32'd1 << SIMD) - 32'd1)) << off : mem_wmask;

            // the input beats this layer consumed become the unit's x chunks
            logic [LGW-1:0] xbeat;
            logic [4:0]     lr;
            logic           sel;
            assign sel = upd_sel == 4'(l);
            always_ff @(posedge clk) begin
                if (rst) begin
                    xbeat <= '0;
                    lr <= '0;
                end else begin
                    if (l_take[l]) xbeat <= (32'(xbeat) == LG - 1) ? '0 : xbeat + 1'b1;
                    if (lr_we && sel) lr <= lr_data;
                end
            end
            mbnn_update #(.K(LK), .N(LN), .PIXELS(0), .HB(HB), .TK(TK), .LANES(SIMD),
                          .SR((SR >> l) & 1), .TF_STAGE(TF_STAGE), .ULANES(ULANES), .PIPE(UPIPE)) u_update (
                .clk(clk), .rst(rst), .lr_shift(lr),
                .sr_we(sr_we && sel), .sr_rnd_d(sr_rnd), .sr_seed_d(sr_seed), .sr_step_d(sr_step),
                .sr_step_q(u_srs[l]),
                .tbl_we(tbl_we && sel), .tbl_addr(tbl_addr[((TK > 0) ? TK : 1)-1:0]), .tbl_data(tbl_data),
                .x_we(l_take[l]), .x_addr(xbeat), .x_data(l_data[SIMD*l +: SIMD]),
                .d_we(d_we && sel), .d_addr(d_addr[LNW-1:0]), .d_data(d_data),
                .h_we(h_we && sel), .h_re(h_re && sel), .h_addr(h_addr[LAW-1:0]), .h_wdata(h_wdata),
                .h_rdata(u_hrd[l]), .h_rvalid(u_hrv[l]),
                .start(upd_start), .busy(u_busy[l]), .done(u_done),
                .sgn_we(sg_we), .sgn_addr(sg_addr), .sgn_row(sg_row), .sgn_chunk(sg_chunk), .sgn_data(sg_data),
                .sgn_ready(1'b1),
                .n_changed(u_chg[l]), .n_flipped(u_flp[l])
            );
        end
    end

    // host read-back of the selected layer
    always_comb begin
        h_rdata = '0;
        h_rvalid = 1'b0;
        n_changed = '0;
        n_flipped = '0;
        sr_step_q = '0;
        for (int l = 0; l < MBNN_L; l++) begin
            if (upd_sel == 4'(l)) begin
                h_rdata = u_hrd[l];
                h_rvalid = u_hrv[l];
                n_changed = u_chg[l];
                n_flipped = u_flp[l];
                sr_step_q = u_srs[l];
            end
        end
    end
endmodule
