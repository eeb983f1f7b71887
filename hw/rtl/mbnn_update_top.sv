// A whole exported MLP that keeps learning on chip: the chain of inference engines mbnn_top uses
// (mbnn_chain.sv), plus one metaplastic update unit (mbnn_update.sv) per layer.
//
// Forward: exactly mbnn_top's stream interface (in_* / out_*). Every layer's update unit also
// records the input beats its layer consumed (the stream between layers is tapped), so after an
// image the units hold that image's layer inputs: pixels for layer 0, the sign bits the engine
// computed for the others. LANES = SIMD, so one beat is one chunk of the update unit.
//
// Learning step (FORMAT.md 4.3), with the engine idle (`busy` low):
//   1. stream the image (forward in RTL; `out_score` gives the scores for the output error),
//   2. the host writes every layer's deltas (upd_sel selects the layer, d_we/d_addr/d_data),
//   3. pulse upd_start: all layers' units run at once, each streams through its hidden memory and
//      writes its new sign bits straight into its own engine's weight memory (wr port, sel 0,
//      masked 32-bit words in FORMAT order); upd_busy falls when the last one is done.
//   Cycles of step 3: max over layers of N_l * ceil(K_l / SIMD) * T + 3 + 4 UPIPE + HREG (+ max(20 / TF_STAGE
//   - 1 - HREG, 0) on an SR layer), T = SIMD / ULANES: ULANES < SIMD shares each unit's lanes (and
//   multipliers) among a chunk's synapses, SIMD / ULANES cycles a chunk (the board top builds ULANES 1,
//   UPIPE 1, TF_STAGE 2 and HREG 1: hw/fpga/mbnn_uart_top.sv). The hidden read-back (h_rvalid) comes
//   1 + HREG cycles after h_re.
// Host ports for learning state (upd_sel picks the layer): lr_shift, f_meta table, hidden memory
// read/write, counters of the last pass (n_changed, n_flipped). The engine's own memory port
// (mem_*) stays as in mbnn_top for everything else; it is ignored for a layer whose unit is busy.
//
// HB and TK (hidden bits, table bits) are the same for every layer here (the exporter's default);
// the testbench checks the model agrees. Reset: synchronous, active high, as everywhere in hw/.
//
// Stochastic rounding (FORMAT.md 4.4): bit l of SR gives layer l's unit the Threefry draws (one
// generator per lane, mbnn_update.sv); the host writes that layer's rounding bit, sr_seed and sr_step
// (sr_we, upd_sel) as it writes lr_shift, reads sr_step back on sr_step_q (saved state: every pass of a
// layer rounding stochastically counts one), and step 3 takes 20 / TF_STAGE - 1 cycles more on a build
// with any SR bit. A layer without its SR bit rounds to nearest whatever the host writes (sr_step_q 0).
//
// Away table (FORMAT.md 4.2.1): bit l of AWAY gives layer l's unit the table G, which the host writes as it
// writes F, with tbl_away high (mbnn_update.sv); a layer without its AWAY bit passes pushes away from zero
// unchanged and ignores such writes (so a model whose layer has G needs that bit: metabnn.backends.rtl.away_mask).
module mbnn_update_top #(
    parameter int SIMD = 8,    // input elements per cycle = update lanes: 1, 2, 4, 8, 16 or 32
    parameter int PE = 4,      // neurons in parallel in every engine
    parameter int HB = 8,      // hidden weight bits b
    parameter int TK = 4,      // f_meta table bits k
    parameter int SR = 0,      // bit l: layer l's update unit has the stochastic rounding hardware
    parameter int AWAY = 0,    // bit l: layer l's update unit has the away table G (FORMAT.md 4.2.1)
    parameter int TF_STAGE = 4, // Threefry rounds per pipeline stage in those units
    parameter int ULANES = SIMD, // update lanes built per unit (divides SIMD): a chunk in SIMD / ULANES cycles
    parameter int UPIPE = 0,   // 1: the units' pipelined lanes (mbnn_update.sv PIPE)
    parameter int HREG = 0     // 1: the units' hidden reads registered twice (mbnn_update.sv HREG; +1 cycle)
) (
    input  logic                clk,
    input  logic                rst,
    // inference stream (as mbnn_top)
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
    // engine memory port (as mbnn_top)
    input  logic                mem_we,
    input  logic [3:0]          mem_layer,
    input  logic [2:0]          mem_sel,
    input  logic [31:0]         mem_addr,
    input  logic [31:0]         mem_wdata,
    input  logic [31:0]         mem_wmask,
    // learning: host side of the update units
    input  logic [3:0]          upd_sel,
    /* verilator lint_off UNUSEDSIGNAL */  // address bits above a layer's depth are ignored
    input  logic                lr_we,
    input  logic [4:0]          lr_data,
    input  logic                sr_we,      // rounding bit, sr_seed, sr_step of layer upd_sel (FORMAT.md 4.4)
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
    output logic [31:0]         sr_step_q   // sr_step of layer upd_sel now
);
    /* verilator lint_off UNUSEDPARAM */  // this top needs part of the shape; mbnn_chain all of it
    `include "mbnn_model.svh"   // MBNN_L, MBNN_B, MBNN_K, MBNN_N, MBNN_ADAPT, MBNN_HEXDIR
    /* verilator lint_on UNUSEDPARAM */

    // each layer's memory write port (the host's, or its update unit's while that one is busy) and the
    // input beats each layer takes (the update units' x), both from the shared chain
    logic [MBNN_L-1:0]         wr_en, l_take;
    logic [3*MBNN_L-1:0]       wr_sel;
    logic [32*MBNN_L-1:0]      wr_addr, wr_data, wr_mask;
    logic [8*SIMD*MBNN_L-1:0]  l_data;

    mbnn_chain #(.SIMD(SIMD), .PE(PE), .L(MBNN_L)) u_chain (
        .clk(clk), .rst(rst),
        .in_valid(in_valid), .in_ready(in_ready), .in_data(in_data), .in_bank(in_bank), .in_adapt(in_adapt),
        .out_valid(out_valid), .out_ready(out_ready), .out_class(out_class), .out_score(out_score),
        .busy(busy),
        .wr_en(wr_en), .wr_sel(wr_sel), .wr_addr(wr_addr), .wr_data(wr_data), .wr_mask(wr_mask),
        .l_take(l_take), .l_data(l_data)
    );

    // one update unit per layer, layer 0 on pixels (mbnn_update_bank.sv)
    mbnn_update_bank #(.SIMD(SIMD), .HB(HB), .TK(TK), .SR(SR), .AWAY(AWAY), .TF_STAGE(TF_STAGE), .ULANES(ULANES), .UPIPE(UPIPE),
                       .HREG(HREG), .L(MBNN_L), .FIRST(0), .PX0(1), .IW(8 * SIMD), .KS(MBNN_K), .NS(MBNN_N)) u_bank (
        .clk, .rst, .mem_we, .mem_layer, .mem_sel, .mem_addr, .mem_wdata, .mem_wmask,
        .wr_en, .wr_sel, .wr_addr, .wr_data, .wr_mask, .l_take, .l_data,
        .upd_sel, .lr_we, .lr_data, .sr_we, .sr_rnd, .sr_seed, .sr_step, .tbl_we, .tbl_away, .tbl_addr, .tbl_data,
        .d_we, .d_addr, .d_data, .h_we, .h_re, .h_addr, .h_wdata, .h_rdata, .h_rvalid,
        .upd_start, .upd_busy, .n_changed, .n_flipped, .sr_step_q
    );
endmodule
