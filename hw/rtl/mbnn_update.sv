// On-chip metaplastic update of one dense layer (docs/FORMAT.md 4.3 step 5).
//
// Holds the layer's hidden weights (the state only learning needs) and streams through
// them once per learning step, LANES synapses per cycle, writing back both the new hidden
// weights and, in the same pass, the new sign bits to the inference engine's packed
// weight memory (the `sgn_*` port). The host (firmware or testbench) loads, while idle:
// the layer input x (`x_*`), the deltas (`d_*`), the f_meta table (`tbl_*`), and can read
// or write the hidden memory (`h_*`); then pulses `start`.
//
// Memory layout ("chunks"): a row (neuron j) is G = ceil(K / LANES) chunks of LANES
// synapses; chunk address a = j * G + g holds synapses g*LANES .. g*LANES+LANES-1, lane l
// at bits [l*HB +: HB] of the hidden word and bit l of the sign word. Lanes past K are
// padding: their hidden value is kept and their sign bit is written 0 (FORMAT.md 2).
// The x memory uses the same chunking: chunk g holds x_{g*LANES+l} at [l*XB +: XB]
// (XB = 8 for pixels, 1 for bits, bit 1 = +1).
//
// Timing: the pass issues one slice of ULANES synapses per cycle, T = LANES / ULANES slices a chunk (the
// default ULANES = LANES: one chunk a cycle); cycles from the `start` edge to the `done` edge are
// N * G * T + 3 + 4 * PIPE + HREG when `sgn_ready` stays high (test_mbnn_update.py checks it): the hidden read,
// its second register (HREG), the registered slice (PIPE), the lane's 2 (or 5 with PIPE) stages. `sgn_ready` low stalls the whole pipeline
// (the write to the engine's memory, once per chunk at its last slice, is the only place that can wait).
//
// Sharing the lanes (ULANES < LANES): the chunk's hidden word is read at each of its slices, slice t goes
// through the ULANES lanes (and their multipliers: `delta * x` for pixels, `|u| * F`), and the slices leaving
// the lanes are gathered into the chunk written back (and its sign bits) at the last one. Hardware per unit:
// ULANES lanes (and, SR, ULANES Threefry generators) instead of LANES; the memory layout, the host port
// and the sign writes are the same for every ULANES.
//
// HREG = 1 registers the hidden memory's read once more (with the x and delta reads beside it) before the slice
// is taken from it: on ECP5 the block RAM's clock-to-out (5.8 ns) and the multiplexer over a deep memory's
// blocks were the learning build's slowest path (docs/FPGA.md), so the board top builds it. The host read's
// data then comes 2 cycles after h_re (h_rvalid with it), a pass takes one cycle more (none more with SR and
// TLAT > 1: the pre-roll is one shorter). HREG = 0: as before.
//
// Counters (cleared by `start`, valid once `done`): n_changed = synapses whose hidden
// weight changed (h' != h), n_flipped = synapses whose binary weight changed sign.
//
// Reset: synchronous, active high (`rst`), clears the control state and the counters;
// memories keep their contents.
//
// Stochastic rounding (SR = 1, FORMAT.md 4.4): the unit holds the layer's rounding bit, sr_seed and
// sr_step (host port sr_*, written while idle; sr_step_q reads the step back, it is saved state) and
// gives every lane its synapse's draw (r0, r1) = Threefry-2x32-20(ctr = (j K + i, sr_step),
// key = (sr_seed, 0)) from one mbnn_threefry per lane built. The counters come from a second walk of the
// rows, a feed pointer that starts with the pass and runs TLAT - 1 slices ahead of the issue (TLAT =
// 20 / TF_STAGE, the generator's latency): its base j K + g LANES + t ULANES steps by ULANES, or
// ULANES - PADL at a row end, so no multiplier; lane l adds l. The issue waits those TLAT - 1 cycles at the
// start (TLAT - 1 - HREG with HREG: the slice meets its draws a stage later; never below 0, a TLAT of 1 then
// registers the draws once more), so a pass takes N * G * T + 3 + 4 * PIPE + HREG + max(TLAT - 1 - HREG, 0)
// cycles. Draws of padding lanes alias the next row's indices and
// are discarded with their lane. With rounding 0 the lanes get the nearest constants (r0 = 2^(s-1),
// r1 = 16384): 4.3 exactly, on the same hardware. After every pass (one learning step) a layer with
// rounding 1 does sr_step += 1; a reset clears the three registers. SR = 0: none of this exists.
//
// Away table (AWAY = 1, FORMAT.md 4.2.1): a second table G of 2^TK entries beside F, written through the same
// host port with tbl_away high (tbl_away low: F), read by every lane (mbnn_update_lane.sv AWAY: one multiplier,
// F toward zero, G away from it). AWAY = 0: no G memory, a write with tbl_away high changes nothing.
module mbnn_update #(
    parameter int K = 64,       // inputs of the layer
    parameter int N = 32,       // neurons of the layer
    parameter int PIXELS = 0,   // 1: first layer (8-bit pixel inputs), 0: +-1 bit inputs
    parameter int HB = 8,       // hidden weight bits b (2..16)
    parameter int TK = 4,       // f_meta table bits k (0..min(HB-1, 12))
    parameter int LANES = 8,    // synapses per cycle
    parameter int SR = 0,       // 1: stochastic rounding hardware (a Threefry generator per lane)
    parameter int TF_STAGE = 4, // SR: Threefry rounds per pipeline stage (mbnn_threefry.sv)
    parameter int ULANES = LANES, // update lanes built: a chunk's LANES synapses go through them in
                                  // LANES / ULANES cycles (divides LANES; the default is one chunk a cycle)
    parameter int PIPE = 0,     // 1: the lanes cut into five stages and the slice registered (for the clock)
    parameter int HREG = 0,     // 1: the hidden read registered twice (for the clock; latency + 1)
    parameter int AWAY = 0,     // 1: the away table G (FORMAT.md 4.2.1) and the lanes that read it
    // derived, do not override
    parameter int XB = (PIXELS != 0) ? 8 : 1,
    parameter int G = (K + LANES - 1) / LANES,
    parameter int AW = (N * G > 1) ? $clog2(N * G) : 1,
    parameter int GW = (G > 1) ? $clog2(G) : 1,
    parameter int NW = (N > 1) ? $clog2(N) : 1,
    parameter int TW = (TK > 0) ? TK : 1
) (
    input  logic                    clk,
    input  logic                    rst,
    // run-time setting of the layer (FORMAT.md 6: 0..31)
    input  logic [4:0]              lr_shift,
    // stochastic rounding state (SR = 1; FORMAT.md 4.4, ignored while busy): rounding bit, seed, step
    /* verilator lint_off UNUSEDSIGNAL */  // SR = 0 has no such state
    input  logic                    sr_we,
    input  logic                    sr_rnd_d,
    input  logic [31:0]             sr_seed_d,
    input  logic [31:0]             sr_step_d,
    /* verilator lint_on UNUSEDSIGNAL */
    output logic [31:0]             sr_step_q,  // the layer's sr_step now (0 when SR = 0)
    // f_meta table F (tbl_away low) or, AWAY = 1, the away table G (tbl_away high), Q15
    input  logic                    tbl_we,
    input  logic                    tbl_away,   // AWAY = 0: such a write is ignored (F stays)
    input  logic [TW-1:0]           tbl_addr,
    input  logic [15:0]             tbl_data,
    // layer input, one chunk per write
    input  logic                    x_we,
    input  logic [GW-1:0]           x_addr,
    input  logic [LANES*XB-1:0]     x_data,
    // deltas, one neuron per write (|delta| <= 32767 in the format)
    input  logic                    d_we,
    input  logic [NW-1:0]           d_addr,
    input  logic signed [15:0]      d_data,
    // hidden memory host port (ignored while busy); read data 1 + HREG cycles after h_re, with h_rvalid
    input  logic                    h_we,
    input  logic                    h_re,
    input  logic [AW-1:0]           h_addr,
    input  logic [LANES*HB-1:0]     h_wdata,
    output logic [LANES*HB-1:0]     h_rdata,
    output logic                    h_rvalid,
    // control
    input  logic                    start,
    output logic                    busy,
    output logic                    done,       // one-cycle pulse at the end of a pass
    // sign write-back into the inference engine's weight memory
    output logic                    sgn_we,
    output logic [AW-1:0]           sgn_addr,   // chunk address j * G + g
    output logic [NW-1:0]           sgn_row,    // j (for memories organised in other words)
    output logic [GW-1:0]           sgn_chunk,  // g
    output logic [LANES-1:0]        sgn_data,   // bit l = (h' >= 0) of lane l, padding 0
    input  logic                    sgn_ready,
    // counters for the host
    output logic [31:0]             n_changed,
    output logic [31:0]             n_flipped
);
    localparam int DEPTH = N * G;
    localparam int PADL = G * LANES - K;  // padding lanes in the last chunk of a row
    localparam int T = LANES / ULANES;    // cycles per chunk: the lanes' slices, one a cycle
    localparam int SLW = (T > 1) ? $clog2(T) : 1;
    localparam int SW = ULANES * HB;      // bits of one slice of a hidden word
    localparam int LL = 2 + 3 * PIPE;     // the lane's latency (mbnn_update_lane.sv)
    localparam int D = HREG + PIPE + LL;  // stages from the RAM outputs (stage 1) to the lanes' outputs

    if (TK < 0 || TK > HB - 1 || TK > 12 || HB < 2 || HB > 16 || LANES < 1 || K < 1 || N < 1)
    begin : g_bad_params
        $error("mbnn_update: need 2 <= HB <= 16, 0 <= TK <= min(HB-1, 12), LANES, K, N >= 1");
    end
    if (SR < 0 || SR > 1 || PIPE < 0 || PIPE > 1 || HREG < 0 || HREG > 1 || AWAY < 0 || AWAY > 1) begin : g_bad_sr
        $error("mbnn_update: SR, PIPE, HREG and AWAY must be 0 or 1");
    end
    if (ULANES < 1 || ULANES > LANES || LANES % ULANES != 0) begin : g_bad_ulanes
        $error("mbnn_update: ULANES must divide LANES");
    end

    // ---------------- memories ----------------
    logic [LANES*HB-1:0] hmem [DEPTH];
    logic [LANES*XB-1:0] xmem [G];
    logic signed [15:0]  dmem [N];
    logic [15:0]         ftab [1 << TK];

    // ---------------- control ----------------
    // The pass issues one slice (ULANES synapses of a chunk) per cycle: (a0, t0) walks chunk by chunk, t0 the
    // slice of chunk a0. Stage 1 holds the RAM outputs (stage 1h their second register with HREG, stage 1p the
    // slice with PIPE); q[i] is the stage i + 1 (q[D]: the lanes' outputs).
    logic           running;   // issuing slices
    logic [AW-1:0]  a0;        // chunk address being issued
    logic [GW-1:0]  g0;        // its chunk index in the row
    logic [NW-1:0]  j0;        // its row
    logic [SLW-1:0]  t0;        // its slice
    // stage i + 1 of each at [i*W +: W] (shift registers, flip-flops)
    logic [D:0]           vq;            // stage valid bits
    logic [(D+1)*AW-1:0]  aq;
    logic [(D+1)*NW-1:0]  jq;
    logic [(D+1)*GW-1:0]  gq;
    logic [(D+1)*SLW-1:0] tq;
    /* verilator lint_off UNUSEDSIGNAL */  // stages 1h and 1p exist with HREG and PIPE only
    logic [HREG+1:0]      lastq;         // stages 1 (1h) and 1p: the chunk is the last of its row (padding)
    /* verilator lint_on UNUSEDSIGNAL */
    logic           en;
    logic           v3;                  // the output stage (q[D])
    logic [AW-1:0]  a3;
    logic [NW-1:0]  j3;
    logic [GW-1:0]  g3;
    logic [SLW-1:0]  t3;
    logic           tl3;                 // its slice is the chunk's last: the chunk is written back
    assign v3 = vq[D];
    assign a3 = aq[D*AW +: AW];
    assign j3 = jq[D*NW +: NW];
    assign g3 = gq[D*GW +: GW];
    assign t3 = tq[D*SLW +: SLW];
    assign tl3 = 32'(t3) == T - 1;

    assign en = !(v3 && tl3 && !sgn_ready);
    assign busy = running || (|vq);

    logic issue;
    logic pre_done;  // SR: the draws of the first slice are on their way (always 1 without SR)
    assign issue = running && en && pre_done;
    logic finish;    // the pass's last write-back: done rises, sr_step counts
    assign finish = v3 && sgn_ready && !(|vq[D-1:0]) && !running;

    always_ff @(posedge clk) begin
        if (rst) begin
            running <= 1'b0;
            vq <= '0;
            done <= 1'b0;
            a0 <= '0;
            g0 <= '0;
            j0 <= '0;
            t0 <= '0;
        end else begin
            done <= 1'b0;
            if (start && !busy) begin
                running <= 1'b1;
                a0 <= '0;
                g0 <= '0;
                j0 <= '0;
                t0 <= '0;
            end else if (issue) begin
                if (32'(t0) == T - 1) begin
                    t0 <= '0;
                    a0 <= a0 + 1'b1;
                    if (32'(g0) == G - 1) begin
                        g0 <= '0;
                        j0 <= j0 + 1'b1;
                    end else begin
                        g0 <= g0 + 1'b1;
                    end
                    if (32'(a0) == DEPTH - 1) running <= 1'b0;
                end else begin
                    t0 <= t0 + 1'b1;
                end
            end
            if (en) vq <= {vq[D-1:0], issue};
            if (finish) done <= 1'b1;
        end
    end

    always_ff @(posedge clk) begin
        if (en) begin
            aq <= {aq[D*AW-1:0], a0};
            jq <= {jq[D*NW-1:0], j0};
            gq <= {gq[D*GW-1:0], g0};
            tq <= {tq[D*SLW-1:0], t0};
            lastq <= {lastq[HREG:0], 32'(g0) == G - 1};
        end
    end

    // ---------------- memory ports ----------------
    // One read port and one write port on the hidden memory, shared by the pass and the host. A chunk is
    // read at each of its slices and written back once, D + 1 cycles after its last read, so the pass never
    // reads a word it has still to write.
    logic [LANES*HB-1:0] hrd;
    logic [LANES*XB-1:0] xrd;
    logic signed [15:0]  drd;
    logic [LANES*HB-1:0] hwb;      // written-back chunk
    logic                wb;       // the pass writes a chunk this cycle
    assign wb = v3 && tl3 && sgn_ready;

    always_ff @(posedge clk) begin
        if (wb) hmem[a3] <= hwb;
        else if (h_we && !busy) hmem[h_addr] <= h_wdata;
        if (busy ? issue : h_re) hrd <= hmem[busy ? a0 : h_addr];
        if (issue) begin
            xrd <= xmem[g0];
            drd <= dmem[j0];
        end
        if (x_we && !busy) xmem[x_addr] <= x_data;
        if (d_we && !busy) dmem[d_addr] <= d_data;
        if (tbl_we && !busy && !tbl_away) ftab[tbl_addr[TW-1:0]] <= tbl_data;
    end
    // the reads as the slice takes them: stage 1, or with HREG their second register, stage 1h (Yosys may
    // put it in the block RAM's output register; else it follows the multiplexer over the RAM's blocks)
    logic [LANES*HB-1:0] hrq;
    logic [LANES*XB-1:0] xrq;
    logic signed [15:0]  drq;
    logic                hrv;   // a host read's data is in hrd
    always_ff @(posedge clk) hrv <= !rst && h_re && !busy;
    if (HREG != 0) begin : g_hreg
        always_ff @(posedge clk) begin
            if (en) begin   // en is high while idle: a host read moves on too
                hrq <= hrd;
                xrq <= xrd;
                drq <= drd;
            end
            h_rvalid <= !rst && hrv;
        end
    end else begin : g_hreg_none
        assign hrq = hrd;
        assign xrq = xrd;
        assign drq = drd;
        assign h_rvalid = hrv;
    end
    assign h_rdata = hrq;

    logic [(16 << TK)-1:0] table_flat;
    for (genvar t = 0; t < (1 << TK); t++) begin : g_tab
        assign table_flat[16 * t +: 16] = ftab[t];
    end
    logic [(16 << TK)-1:0] away_flat;  // G (AWAY = 1), else unused by the lanes
    if (AWAY != 0) begin : g_away
        logic [15:0] gtab [1 << TK];
        always_ff @(posedge clk) if (tbl_we && !busy && tbl_away) gtab[tbl_addr[TW-1:0]] <= tbl_data;
        for (genvar t = 0; t < (1 << TK); t++) begin : g_gtab
            assign away_flat[16 * t +: 16] = gtab[t];
        end
    end else begin : g_away_none
        assign away_flat = table_flat;  // any driven value: the lanes without G do not read it ('0 would be a
                                        // 65,536-bit replication at TK = 12, which Verilator flags)
    end

    // ---------------- draws (SR) ----------------
    logic [ULANES*32-1:0] r0s, r1s;  // lane l's (r0, r1) at [32 l +: 32], with the slice in stage 1 (1h)
    if (SR == 0) begin : g_nearest
        assign pre_done = 1'b1;
        assign r0s = '0;
        assign r1s = '0;
        assign sr_step_q = '0;
    end else begin : g_sr
        localparam int TLAT = 20 / TF_STAGE;
        localparam int DLY = (TLAT - 1 < HREG) ? 1 : 0;  // the draws registered once more (TLAT 1 with HREG)
        localparam logic [4:0] PRE = 5'(TLAT + DLY - 1 - HREG);
        logic        rnd;
        logic [31:0] seed, step;
        always_ff @(posedge clk) begin
            if (rst) begin
                rnd <= 1'b0;
                seed <= '0;
                step <= '0;
            end else if (sr_we && !busy) begin
                rnd <= sr_rnd_d;
                seed <= sr_seed_d;
                step <= sr_step_d;
            end else if (rnd && finish) begin
                step <= step + 32'd1;  // the pass's last write: the step is over (done rises now)
            end
        end
        assign sr_step_q = step;

        logic [4:0] pre;  // pre-roll cycles left before the first issue
        always_ff @(posedge clk) begin
            if (rst) pre <= '0;
            else if (start && !busy) pre <= PRE;
            else if (en && pre != 5'd0) pre <= pre - 5'd1;
        end
        assign pre_done = pre == 5'd0;

        // the feed pointer: slice (fg, ft) of a row at synapse base j K + g LANES + t ULANES, PRE slices
        // ahead of the issue; at a row's last slice the base steps by ULANES - PADL (mod 2^32: slices that
        // are all padding alias the next row's indices, their draws are discarded with them)
        logic [31:0]   fbase;
        logic [GW-1:0] fg;
        logic [SLW-1:0] ft;
        always_ff @(posedge clk) begin
            if (start && !busy) begin
                fbase <= '0;
                fg <= '0;
                ft <= '0;
            end else if (running && en) begin
                if (32'(ft) == T - 1) begin
                    ft <= '0;
                    if (32'(fg) == G - 1) begin
                        fg <= '0;
                        fbase <= fbase + 32'(ULANES - PADL);
                    end else begin
                        fg <= fg + 1'b1;
                        fbase <= fbase + 32'(ULANES);
                    end
                end else begin
                    ft <= ft + 1'b1;
                    fbase <= fbase + 32'(ULANES);
                end
            end
        end

        logic [31:0] near0;  // nearest rounding as a draw: r0 & (2^s - 1) = 2^(s-1), r1 & 0x7FFF = 16384
        assign near0 = (32'd1 << lr_shift) >> 1;
        for (genvar l = 0; l < ULANES; l++) begin : g_draw
            logic [31:0] x0, x1, y0, y1;
            mbnn_threefry #(.STAGE(TF_STAGE)) u_tf (
                .clk(clk), .en(en), .c0(fbase + 32'(l)), .c1(step), .k0(seed), .k1(32'd0), .x0(y0), .x1(y1));
            if (DLY != 0) begin : g_dly
                always_ff @(posedge clk) if (en) {x0, x1} <= {y0, y1};
            end else begin : g_dly_none
                assign {x0, x1} = {y0, y1};
            end
            assign r0s[32 * l +: 32] = rnd ? x0 : near0;
            assign r1s[32 * l +: 32] = rnd ? x1 : 32'd16384;
        end
    end

    // ---------------- the slice into the lanes ----------------
    // Slice t of a chunk: lanes t*ULANES .. t*ULANES + ULANES - 1. PIPE = 1 registers it (stage 1p) before
    // the lanes, with the chunk's delta and the draws.
    logic [SW-1:0]          hs;
    logic [ULANES*XB-1:0]   xs;
    logic signed [15:0]     ds;
    logic [ULANES*32-1:0]   r0l, r1l;
    logic [SLW-1:0]          ts;      // the slice at the lanes' inputs
    logic                   lasts;   // its chunk is the last of its row
    if (PIPE != 0) begin : g_p
        always_ff @(posedge clk) begin
            if (en) begin
                hs <= hrq[32'(tq[HREG*SLW +: SLW]) * SW +: SW];
                xs <= xrq[32'(tq[HREG*SLW +: SLW]) * ULANES * XB +: ULANES * XB];
                ds <= drq;
                r0l <= r0s;
                r1l <= r1s;
            end
        end
        assign ts = tq[(HREG+1)*SLW +: SLW];
        assign lasts = lastq[HREG+1];
    end else begin : g_p_none
        assign hs = hrq[32'(tq[HREG*SLW +: SLW]) * SW +: SW];
        assign xs = xrq[32'(tq[HREG*SLW +: SLW]) * ULANES * XB +: ULANES * XB];
        assign ds = drq;
        assign r0l = r0s;
        assign r1l = r1s;
        assign ts = tq[HREG*SLW +: SLW];
        assign lasts = lastq[HREG];
    end

    // ---------------- lanes ----------------
    logic [ULANES-1:0] chg, flp, pad3, sgn3;
    logic [SW-1:0]     hwb3;  // the slice leaving the lanes: new hidden values, padding kept
    for (genvar l = 0; l < ULANES; l++) begin : g_lane
        logic signed [HB-1:0] hn;
        logic [LL*HB-1:0]     hold;   // the input h, delayed to line up with hn (kept on padding)
        logic                 padin;  // lane l of this slice is padding: g*LANES + t*ULANES + l >= K
        logic [LL-1:0]        padq;
        assign padin = lasts && (32'(ts) * ULANES + l >= LANES - PADL);
        mbnn_update_lane #(.HB(HB), .TK(TK), .PIXELS(PIXELS), .SR(SR), .PIPE(PIPE), .AWAY(AWAY)) u_lane (
            .clk(clk), .en(en), .lr_shift(lr_shift), .table_flat(table_flat), .away_flat(away_flat),
            .h(hs[l*HB +: HB]), .x(xs[l*XB +: XB]), .delta(ds),
            .r0(r0l[32 * l +: 32]), .r1(r1l[32 * l +: 32]),
            .h_new(hn), .changed(chg[l]), .flipped(flp[l]));
        always_ff @(posedge clk) begin
            if (en) begin
                hold <= {hold[(LL-1)*HB-1:0], hs[l*HB +: HB]};
                padq <= {padq[LL-2:0], padin};
            end
        end
        assign pad3[l] = padq[LL-1];
        assign hwb3[l*HB +: HB] = pad3[l] ? hold[(LL-1)*HB +: HB] : hn;
        assign sgn3[l] = !pad3[l] && !hn[HB-1];
    end

    // ---------------- write-back: the chunk's slices gathered ----------------
    if (T > 1) begin : g_gather
        logic [(T-1)*SW-1:0]     hbuf;  // slices 0 .. T-2 of the chunk at the output
        logic [(T-1)*ULANES-1:0] sbuf;
        always_ff @(posedge clk) begin
            if (en && v3 && !tl3) begin
                hbuf[32'(t3) * SW +: SW] <= hwb3;
                sbuf[32'(t3) * ULANES +: ULANES] <= sgn3;
            end
        end
        assign hwb = {hwb3, hbuf};
        assign sgn_data = {sgn3, sbuf};
    end else begin : g_gather_none
        assign hwb = hwb3;
        assign sgn_data = sgn3;
    end

    assign sgn_we = v3 && tl3;
    assign sgn_addr = a3;
    assign sgn_row = j3;
    assign sgn_chunk = g3;

    // ---------------- counters ----------------
    localparam int CW = $clog2(ULANES + 1);
    logic [CW-1:0] pc_chg, pc_flp;
    always_comb begin
        pc_chg = '0;
        pc_flp = '0;
        for (int l = 0; l < ULANES; l++) begin
            pc_chg = pc_chg + CW'(chg[l] && !pad3[l]);
            pc_flp = pc_flp + CW'(flp[l] && !pad3[l]);
        end
    end
    always_ff @(posedge clk) begin
        if (rst) begin
            n_changed <= '0;
            n_flipped <= '0;
        end else if (start && !busy) begin
            n_changed <= '0;
            n_flipped <= '0;
        end else if (v3 && en) begin
            n_changed <= n_changed + 32'(pc_chg);
            n_flipped <= n_flipped + 32'(pc_flp);
        end
    end
endmodule
