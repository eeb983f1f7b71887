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
// max over the dense layers of N_l * ceil(K_l / SIMD) * SIMD / ULANES + 3 + 4 UPIPE + HREG (+ max(20 / TF_STAGE
// - 1 - HREG, 0) on an SR layer). The conv layers have no unit: only the host's memory port writes them. The
// units, their taps and write ports and the read-back are mbnn_update_bank.sv, shared with mbnn_update_top.
// Host ports as mbnn_update_top's; a upd_sel that names a conv layer reads zeros and writes nothing.
// HB and TK are one value for the dense layers. Reset: synchronous, active high, as everywhere in hw/.
module mbnn_conv_update_top #(
    parameter int SIMD = 8,    // elements per cycle in every layer = update lanes: 1, 2, 4, 8, 16 or 32
    parameter int PE = 4,      // neurons in parallel in every engine
    parameter int HB = 8,      // hidden weight bits b (dense layers)
    parameter int TK = 4,      // f_meta table bits k (dense layers)
    parameter int SR = 0,      // bit l: dense layer l's update unit has the stochastic rounding hardware
    parameter int AWAY = 0,    // bit l: dense layer l's update unit has the away table G (mbnn_update_top)
    parameter int TF_STAGE = 4, // Threefry rounds per pipeline stage in those units
    parameter int ULANES = SIMD, // update lanes built per unit (divides SIMD): a chunk in SIMD / ULANES cycles
    parameter int UPIPE = 0,   // 1: the units' pipelined lanes (mbnn_update.sv PIPE)
    parameter int HREG = 0     // 1: the units' hidden reads registered twice (mbnn_update.sv HREG; +1 cycle)
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
    input  logic                tbl_away,   // 1: tbl_we writes the away table G of layer upd_sel, 0: F
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

    logic [MBNN_L-1:0]      wr_en, l_take;
    logic [3*MBNN_L-1:0]    wr_sel;
    logic [32*MBNN_L-1:0]   wr_addr, wr_data, wr_mask;
    logic [SIMD*MBNN_L-1:0] l_data;   // the conv layers' taps are 0

    mbnn_conv_chain #(.SIMD(SIMD), .PE(PE), .L(MBNN_L)) u_chain (
        .clk(clk), .rst(rst),
        .in_valid(in_valid), .in_ready(in_ready), .in_data(in_data), .in_bank(in_bank),
        .out_valid(out_valid), .out_ready(out_ready), .out_class(out_class), .out_score(out_score), .busy(busy),
        .wr_en(wr_en), .wr_sel(wr_sel), .wr_addr(wr_addr), .wr_data(wr_data), .wr_mask(wr_mask),
        .l_take(l_take), .l_data(l_data)
    );

    // an update unit per dense layer (MBNN_NC on, all on bits), the conv layers frozen (mbnn_update_bank.sv)
    mbnn_update_bank #(.SIMD(SIMD), .HB(HB), .TK(TK), .SR(SR), .AWAY(AWAY), .TF_STAGE(TF_STAGE), .ULANES(ULANES), .UPIPE(UPIPE),
                       .HREG(HREG), .L(MBNN_L), .FIRST(MBNN_NC), .PX0(0), .IW(SIMD), .KS(MBNN_K), .NS(MBNN_N)) u_bank (
        .clk, .rst, .mem_we, .mem_layer, .mem_sel, .mem_addr, .mem_wdata, .mem_wmask,
        .wr_en, .wr_sel, .wr_addr, .wr_data, .wr_mask, .l_take, .l_data,
        .upd_sel, .lr_we, .lr_data, .sr_we, .sr_rnd, .sr_seed, .sr_step, .tbl_we, .tbl_away, .tbl_addr, .tbl_data,
        .d_we, .d_addr, .d_data, .h_we, .h_re, .h_addr, .h_wdata, .h_rdata, .h_rvalid,
        .upd_start, .upd_busy, .n_changed, .n_flipped, .sr_step_q
    );
endmodule
