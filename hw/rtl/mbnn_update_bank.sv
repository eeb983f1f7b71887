// The learning side of a chain of engines, shared by mbnn_update_top (the MLP) and mbnn_conv_update_top (the conv
// net's dense layers), so the two tops cannot drift apart: one metaplastic update unit (mbnn_update.sv) per layer
// from FIRST on, each with its layer's input tap, lr_shift register and the write port into its engine, and the
// host's read-back of the layer upd_sel selects.
//
// Per layer l of the chain (the tops' wr_* / l_take / l_data, mbnn_chain.sv and mbnn_conv_chain.sv):
//   - l < FIRST (a frozen conv layer): no unit; its write port is the host's memory port (mem_*), its read-back 0;
//   - else: the unit records the input beats its layer consumed (l_take, the low (PIXELS ? 8 : 1) * SIMD bits of
//     l_data's IW-bit slot l: LANES = SIMD, one beat is one chunk), and while it is busy its sign writes become
//     masked 32-bit weight words in FORMAT order (sel 0, chunk-aligned), else the host's port writes the layer.
// Layer 0 takes 8-bit pixels when PX0 = 1 (the MLP), bits otherwise. KS, NS: the shape (MBNN_K, MBNN_N of the
// model's .svh: 32 bits a layer, layer 0 lowest). upd_busy: any unit busy. Reset: synchronous, active high.
module mbnn_update_bank #(
    parameter int SIMD = 8,
    parameter int HB = 8,
    parameter int TK = 4,
    parameter int SR = 0,        // bit l: layer l's unit has the stochastic rounding hardware
    parameter int AWAY = 0,      // bit l: layer l's unit has the away table G (FORMAT.md 4.2.1)
    parameter int TF_STAGE = 4,
    parameter int ULANES = SIMD,
    parameter int UPIPE = 0,
    parameter int HREG = 0,
    parameter int L = 1,         // layers of the chain
    parameter int FIRST = 0,     // the first layer with a unit (the conv net's MBNN_NC)
    parameter int PX0 = 1,       // 1: layer 0's inputs are 8-bit pixels
    parameter int IW = 8 * SIMD, // bits of a layer's slot in l_data
    parameter logic [32*16-1:0] KS = '0,
    parameter logic [32*16-1:0] NS = '0
) (
    input  logic                clk,
    input  logic                rst,
    // the host's engine memory port and the chain's per-layer write ports
    input  logic                mem_we,
    input  logic [3:0]          mem_layer,
    input  logic [2:0]          mem_sel,
    input  logic [31:0]         mem_addr,
    input  logic [31:0]         mem_wdata,
    input  logic [31:0]         mem_wmask,
    output logic [L-1:0]        wr_en,
    output logic [3*L-1:0]      wr_sel,
    output logic [32*L-1:0]     wr_addr,
    output logic [32*L-1:0]     wr_data,
    output logic [32*L-1:0]     wr_mask,
    // the chain's input taps
    /* verilator lint_off UNUSEDSIGNAL */  // frozen layers' taps, slot bits above a layer's input
    input  logic [L-1:0]        l_take,
    input  logic [IW*L-1:0]     l_data,
    /* verilator lint_on UNUSEDSIGNAL */
    // learning: host side of the units (as mbnn_update_top's ports)
    input  logic [3:0]          upd_sel,
    /* verilator lint_off UNUSEDSIGNAL */  // address bits above a layer's depth are ignored
    input  logic                lr_we,
    input  logic [4:0]          lr_data,
    input  logic                sr_we,
    input  logic                sr_rnd,
    input  logic [31:0]         sr_seed,
    input  logic [31:0]         sr_step,
    input  logic                tbl_we,
    input  logic                tbl_away,   // 1: tbl_we writes G (a layer whose AWAY bit is set), 0: F
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
    localparam int CPW = 32 / SIMD;  // update chunks per 32-bit weight word

    logic [L-1:0]        u_busy, u_hrv;
    logic [SIMD*HB-1:0]  u_hrd [L];
    logic [31:0]         u_chg [L];
    logic [31:0]         u_flp [L];
    logic [31:0]         u_srs [L];
    assign upd_busy = |u_busy;

    for (genvar l = 0; l < L; l++) begin : g_layer
        logic host_we;
        assign host_we = mem_we && mem_layer == 4'(l);
        if (l < FIRST) begin : g_frozen
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
            localparam int LK = KS[32*l +: 32];
            localparam int LN = NS[32*l +: 32];
            localparam int PIX = (PX0 != 0 && l == 0) ? 1 : 0;
            localparam int XW = (PIX != 0 ? 8 : 1) * SIMD;      // bits of an input beat
            localparam int LG = (LK + SIMD - 1) / SIMD;          // chunks (= input beats) per row
            localparam int LW = (LK + 31) / 32;                  // weight words per row
            localparam int LAW = (LN * LG > 1) ? $clog2(LN * LG) : 1;
            localparam int LGW = (LG > 1) ? $clog2(LG) : 1;
            localparam int LNW = (LN > 1) ? $clog2(LN) : 1;
            /* verilator lint_off UNUSEDSIGNAL */
            logic [LAW-1:0]  sg_addr;  // chunk address: the engine wants (row, word) instead
            logic            u_done;   // upd_busy is what the host watches
            logic [LNW-1:0]  sg_row;   // (row, chunk): only simulation's check of the counted word address
            logic [LGW-1:0]  sg_chunk;
            /* verilator lint_on UNUSEDSIGNAL */
            logic            sg_we;
            logic [SIMD-1:0] sg_data;
            logic [4:0]      off;  // bit offset of the chunk in its word
            // The word the unit's next sign write goes to, counted instead of computed as row * LW + chunk / CPW:
            // the unit writes its chunks once each, in address order (a row's last chunk ends its word, so the
            // next row starts on the next), and that multiply and add in front of the engine's address compare
            // were the 25F learning build's slowest path (docs/FPGA.md). Simulation checks the count.
            logic [31:0]     wa;
            logic [LGW-1:0]  wc;   // the chunk in its row
            always_ff @(posedge clk) begin
                if (rst || (upd_start && !u_busy[l])) begin
                    wa <= '0;
                    wc <= '0;
                end else if (sg_we) begin
                    wc <= (32'(wc) == LG - 1) ? '0 : wc + 1'b1;
                    if (32'(wc) == LG - 1 || 32'(wc) % CPW == CPW - 1) wa <= wa + 32'd1;
                end
            end
`ifndef SYNTHESIS
            always_ff @(posedge clk) begin
                if (!rst && sg_we && (wc != sg_chunk || wa != 32'(sg_row) * LW + 32'(sg_chunk) / CPW))
                    $fatal(1, "mbnn_update_bank: layer %0d's sign write (row %0d, chunk %0d) out of order", l,
                           sg_row, sg_chunk);
            end
`endif
            assign off = (CPW > 1) ? 5'((32'(wc) % CPW) * SIMD) : 5'd0;
            // the unit's sign writes while it runs (masked words in FORMAT order), else the host's port
            assign wr_en[l] = u_busy[l] ? sg_we : host_we;
            assign wr_sel[3*l +: 3] = u_busy[l] ? 3'd0 : mem_sel;
            assign wr_addr[32*l +: 32] = u_busy[l] ? wa : mem_addr;
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
            mbnn_update #(.K(LK), .N(LN), .PIXELS(PIX), .HB(HB), .TK(TK), .LANES(SIMD), .SR((SR >> l) & 1),
                          .TF_STAGE(TF_STAGE), .ULANES(ULANES), .PIPE(UPIPE), .HREG(HREG), .AWAY((AWAY >> l) & 1))
                u_update (
                .clk(clk), .rst(rst), .lr_shift(lr),
                .sr_we(sr_we && sel), .sr_rnd_d(sr_rnd), .sr_seed_d(sr_seed), .sr_step_d(sr_step),
                .sr_step_q(u_srs[l]),
                .tbl_we(tbl_we && sel), .tbl_away(tbl_away), .tbl_addr(tbl_addr[((TK > 0) ? TK : 1)-1:0]), .tbl_data(tbl_data),
                .x_we(l_take[l]), .x_addr(xbeat), .x_data(l_data[IW*l +: XW]),
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
        for (int l = 0; l < L; l++) begin
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
