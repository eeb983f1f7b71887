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
module mbnn_update_top #(
    parameter int SIMD = 8,    // input elements per cycle = update lanes: 1, 2, 4, 8, 16 or 32
    parameter int PE = 4,      // neurons in parallel in every engine
    parameter int HB = 8,      // hidden weight bits b
    parameter int TK = 4,      // f_meta table bits k
    parameter int SR = 0,      // bit l: layer l's update unit has the stochastic rounding hardware
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

    localparam int CPW = 32 / SIMD;  // update chunks per 32-bit weight word

    logic [MBNN_L-1:0]         u_busy, u_hrv;
    logic [SIMD*HB-1:0]        u_hrd [MBNN_L];
    logic [31:0]               u_chg [MBNN_L];
    logic [31:0]               u_flp [MBNN_L];
    logic [31:0]               u_srs [MBNN_L];
    // each layer's memory write port (the host's, or its update unit's while that one is busy) and the
    // input beats each layer takes (the update units' x), both from the shared chain
    logic [MBNN_L-1:0]         wr_en, l_take;
    logic [3*MBNN_L-1:0]       wr_sel;
    logic [32*MBNN_L-1:0]      wr_addr, wr_data, wr_mask;
    /* verilator lint_off UNUSEDSIGNAL */  // a hidden layer's input is the low SIMD bits of its slot
    logic [8*SIMD*MBNN_L-1:0]  l_data;
    /* verilator lint_on UNUSEDSIGNAL */

    mbnn_chain #(.SIMD(SIMD), .PE(PE), .L(MBNN_L)) u_chain (
        .clk(clk), .rst(rst),
        .in_valid(in_valid), .in_ready(in_ready), .in_data(in_data), .in_bank(in_bank), .in_adapt(in_adapt),
        .out_valid(out_valid), .out_ready(out_ready), .out_class(out_class), .out_score(out_score),
        .busy(busy),
        .wr_en(wr_en), .wr_sel(wr_sel), .wr_addr(wr_addr), .wr_data(wr_data), .wr_mask(wr_mask),
        .l_take(l_take), .l_data(l_data)
    );
    assign upd_busy = |u_busy;

    for (genvar l = 0; l < MBNN_L; l++) begin : g_layer
        localparam int LK = MBNN_K[32*l +: 32];
        localparam int LN = MBNN_N[32*l +: 32];
        localparam int IWL = (l == 0) ? 8 : 1;
        localparam int LG = (LK + SIMD - 1) / SIMD;          // chunks (= input beats) per row
        localparam int LW = (LK + 31) / 32;                  // weight words per row
        localparam int LAW = (LN * LG > 1) ? $clog2(LN * LG) : 1;
        localparam int LGW = (LG > 1) ? $clog2(LG) : 1;
        localparam int LNW = (LN > 1) ? $clog2(LN) : 1;
        /* verilator lint_off UNUSEDSIGNAL */
        logic [LAW-1:0]  sg_addr;  // chunk address: the engine wants (row, word) instead
        logic            u_done;   // upd_busy is what the host watches
        /* verilator lint_on UNUSEDSIGNAL */

        // ---- the update unit's view of the engine: sign writes -> masked weight words ----
        logic            sg_we;
        logic [LNW-1:0]  sg_row;
        logic [LGW-1:0]  sg_chunk;
        logic [SIMD-1:0] sg_data;
        logic [4:0]      off;  // bit offset of the chunk in its word
        logic            we;   // this layer's write port into the chain
        logic [2:0]      ws;
        logic [31:0]     wa, wd, wm;
        assign off = (CPW > 1) ? 5'((32'(sg_chunk) % CPW) * SIMD) : 5'd0;
        always_comb begin
            if (u_busy[l]) begin
                we = sg_we;
                ws = 3'd0;
                wa = 32'(sg_row) * LW + 32'(sg_chunk) / CPW;
                wd = 32'(sg_data) << off;
                wm = ((SIMD == 32) ? 32'hFFFF_FFFF : ((32'd1 << SIMD) - 32'd1)) << off;
            end else begin
                we = mem_we && mem_layer == 4'(l);
                ws = mem_sel;
                wa = mem_addr;
                wd = mem_wdata;
                wm = mem_wmask;
            end
        end
        assign wr_en[l] = we;
        assign wr_sel[3*l +: 3] = ws;
        assign wr_addr[32*l +: 32] = wa;
        assign wr_data[32*l +: 32] = wd;
        assign wr_mask[32*l +: 32] = wm;

        // ---- tap: the input beats this layer consumed become the update unit's x chunks ----
        logic [LGW-1:0] xbeat;
        logic           take;
        assign take = l_take[l];
        always_ff @(posedge clk) begin
            if (rst) xbeat <= '0;
            else if (take) xbeat <= (32'(xbeat) == LG - 1) ? '0 : xbeat + 1'b1;
        end

        logic [4:0] lr;
        always_ff @(posedge clk) begin
            if (rst) lr <= '0;
            else if (lr_we && upd_sel == 4'(l)) lr <= lr_data;
        end

        logic sel;
        assign sel = upd_sel == 4'(l);
        mbnn_update #(.K(LK), .N(LN), .PIXELS(l == 0 ? 1 : 0), .HB(HB), .TK(TK), .LANES(SIMD),
                      .SR((SR >> l) & 1), .TF_STAGE(TF_STAGE), .ULANES(ULANES), .PIPE(UPIPE),
                      .HREG(HREG)) u_update (
            .clk(clk), .rst(rst), .lr_shift(lr),
            .sr_we(sr_we && sel), .sr_rnd_d(sr_rnd), .sr_seed_d(sr_seed), .sr_step_d(sr_step), .sr_step_q(u_srs[l]),
            .tbl_we(tbl_we && sel), .tbl_addr(tbl_addr[((TK > 0) ? TK : 1)-1:0]), .tbl_data(tbl_data),
            .x_we(take), .x_addr(xbeat), .x_data(l_data[8*SIMD*l +: IWL*SIMD]),
            .d_we(d_we && sel), .d_addr(d_addr[LNW-1:0]), .d_data(d_data),
            .h_we(h_we && sel), .h_re(h_re && sel), .h_addr(h_addr[LAW-1:0]), .h_wdata(h_wdata),
            .h_rdata(u_hrd[l]), .h_rvalid(u_hrv[l]),
            .start(upd_start), .busy(u_busy[l]), .done(u_done),
            .sgn_we(sg_we), .sgn_addr(sg_addr), .sgn_row(sg_row), .sgn_chunk(sg_chunk), .sgn_data(sg_data),
            .sgn_ready(1'b1),
            .n_changed(u_chg[l]), .n_flipped(u_flp[l])
        );
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
