// One dense layer of an exported metaplastic BNN (docs/FORMAT.md section 3), bit-exact with metabnn.sim.
//
//   acc_j = sum_i w_ji x_i      (XNOR-popcount for BITS input, +-pixel for PIXELS input)
//   d_j   = acc_j * 256 - M_j
//   SIGN  : out_j = (d_j >= C_j) XOR f_j                   -> packed bits, streamed SIMD per beat
//   SCORES: s_j = g_j * d_j + b_j (int64), argmax (lowest index wins a tie) -> one beat: class, score
//   adapt (FORMAT.md 3.1, ADAPT_SHIFT > 0 and the image's adapt flag): M_j <- M_j + rsr(d_j, ADAPT_SHIFT)
//
// Schedule: the engine processes PE neurons ("a group") at a time and SIMD inputs per cycle, so one
// vector takes ceil(K/SIMD) * ceil(N/PE) issue cycles. During group 0 the input chunks are consumed
// straight from the input stream (and kept in an input buffer for the other groups), so loading the
// vector costs no extra cycles. A group's PE accumulators are handed to a serial normaliser (one neuron
// per cycle, so the per-neuron memories have one read port and the output layer one multiplier); where a
// group is shorter than PE chunks the next group waits PE - ceil(K/SIMD) cycles so the hand-over register
// is free. After the last neuron the pipeline drains, then the result is sent: SIGN ceil(N/SIMD) beats
// (the next layer consumes them during its own group 0), SCORES 1 beat. The cycle count is exact:
// metabnn.backends.rtl.cycles_formula (docs/HARDWARE.md) names every stage below.
//
// Pipeline (every stage one register, so no path holds more than one adder or one memory read; the
// memories' read data goes straight into a register, which is what lets them be block RAM):
//   issue:  I  weight word and input-buffer read (block RAM)      -> R  read data registered
//           S  chunk selected (word lane, input source)          -> D  SIMD/SL slice dots registered
//           T  adder-tree levels, log2(SIMD/SL), one per stage    -> accumulator (+ hand-over at a group's end)
//   neuron: N1 M, C, f / g, b read (block RAM)  N2 read data registered  N3 d = acc*256 - M
//           SIGN   N4 (d >= C) XOR f shifted into the output bits
//           adapt  N4 |d|  N5 rsr and the M write (built only where ADAPT_SHIFT > 0; the latency is the same
//                  with and without adaptation)
//           SCORES N4 four 16x16 products (DSP)  N5..N8 the int64 sum g*d + b  then the running argmax
// SHALLOW = 1 (a slow clock: the iCE40 boards' 12 MHz) leaves out R and N2 (the memories' read data are used
// as they leave the RAM), the tree's registered levels (one sum of the registered slice dots) and N6/N7 (one
// 64-bit sum): every later stage moves up, and the neuron valid chain is longer by what the issue side saved,
// so the layer drains on the same cycle as the full pipeline: one cycle count for both.
//
// Memories (initialised with $readmemh from the exporter's files, docs/FORMAT.md section 7). The write
// port addresses all of them in FORMAT order, exactly like the .mbnn arrays (the update unit and the host):
//   sign words  word j*W + w: 32-bit packed weights of neuron j (W = ceil(K/32) words per row), stored as
//               one wide word per group, wmem[g*W + w] = PE lanes x 32 bits (lane p: neuron g*PE + p), so
//               the PE lanes read one word through one port instead of PE copies of the memory
//   M           mmem[bank*N + j] int32;  SIGN: C cmem, f fmem;  SCORES: g gmem (int32), b bmem (int64)
// Write port (wr_*): wr_sel 0 sign word, written in groups of WG = min(SIMD, 8) bits (bytes; one input chunk
// at SIMD < 8): group k, bits [WG*k +: WG], where wr_mask[WG*k] is 1, the others kept; the mask must be the
// same over each group (the update unit's chunk masks are; a host writes whole bytes: docs/HARDWARE.md),
// 1 M, 2 C, 3 f (bit 0), 4 g, 5 b[31:0], 6 b[63:32]; one write per cycle, takes effect the next cycle.
// Write only while `busy` is 0, else an image in flight may see half-old, half-new weights.
// W_SPRAM = 1 (iCE40 UP5K): the sign words in SPRAM, which starts empty: write every word after
// configuration; a sign write whose groups split a nibble (SIMD 1, 2) takes two cycles there (mbnn_sign_spram.sv).
//
// Reset: synchronous, active high (`rst`), as everywhere in hw/. It aborts an image in flight; the
// memories (weights, and M moved by adaptation) keep their contents.
module mbnn_layer #(
    parameter int K = 64,            // inputs
    parameter int N = 32,            // neurons
    parameter int SIMD = 32,         // input elements per cycle: 1, 2, 4, 8, 16 or 32
    parameter int PE = 1,            // neurons in parallel
    parameter int IN_PIXELS = 0,     // 1: uint8 pixel input (first layer); 0: packed +-1 bits
    parameter int OUT_SCORES = 0,    // 1: scores + argmax (last layer); 0: sign bits
    parameter int BANKS = 1,         // normalization banks (FORMAT.md section 5)
    parameter int ADAPT_SHIFT = 0,   // FORMAT.md 3.1 `a`; 0 = frozen
    parameter int W_SPRAM = 0,       // 1: sign words in iCE40 UP5K SPRAM (mbnn_sign_spram.sv): no initial contents
    parameter int SHALLOW = 0,       // 1: the pipeline for a slow clock (the iCE40 boards' 12 MHz): fewer registers,
                                     //    the same cycle count (header, "SHALLOW")
    parameter W_FILE = "w.hex",
    parameter WPE_FILE = "",         // PE > 1: the sign words in the wide layout (below); "": rearranged from W_FILE
    parameter M_FILE = "m.hex",
    parameter C_FILE = "c.hex",      // SIGN only
    parameter F_FILE = "f.hex",      // SIGN only
    parameter G_FILE = "g.hex",      // SCORES only
    parameter B_FILE = "b.hex"       // SCORES only
) (
    input  logic                                   clk,
    input  logic                                   rst,
    // input stream: ceil(K/SIMD) beats per vector, element i of a beat at bits [IW*i +: IW]
    input  logic                                   in_valid,
    output logic                                   in_ready,
    input  logic [((IN_PIXELS != 0) ? 8 : 1)*SIMD-1:0]    in_data,
    input  logic [7:0]                             in_bank,   // sampled with the first beat
    input  logic                                   in_adapt,  // sampled with the first beat
    // output stream
    output logic                                   out_valid,
    input  logic                                   out_ready,
    output logic [SIMD-1:0]                        out_data,  // SIGN: ceil(N/SIMD) beats, padding 0
    output logic [15:0]                            out_class, // SCORES: argmax
    output logic [63:0]                            out_score, // SCORES: the winning score
    output logic [7:0]                             out_bank,
    output logic                                   out_adapt,
    output logic                                   busy,
    // memory write port
    input  logic                                   wr_en,
    input  logic [2:0]                             wr_sel,
    /* verilator lint_off UNUSEDSIGNAL */  // addresses wider than a memory's depth are truncated
    input  logic [31:0]                            wr_addr,
    /* verilator lint_on UNUSEDSIGNAL */
    input  logic [31:0]                            wr_data,
    input  logic [31:0]                            wr_mask
);
    localparam int IW    = (IN_PIXELS != 0) ? 8 : 1;
    localparam int CH    = (K + SIMD - 1) / SIMD;     // chunks per input vector
    localparam int G     = (N + PE - 1) / PE;         // neuron groups
    localparam int W     = (K + 31) / 32;             // 32-bit words per weight row
    localparam int CPW   = 32 / SIMD;                 // chunks per weight word
    localparam int OCH   = (N + SIMD - 1) / SIMD;     // output beats (SIGN)
    localparam int LASTN = K - (CH - 1) * SIMD;       // valid elements in the last chunk
    localparam int PW    = (IN_PIXELS != 0) ? $clog2(SIMD + 1) + 10 : $clog2(SIMD + 1) + 2;  // partial dot
    localparam int AW    = 34;                        // accumulator and d: |d| <= 512*255*16384 < 2^31
    localparam int OSRW  = G * PE;
    localparam int OPW   = (OCH * SIMD > OSRW) ? OCH * SIMD : OSRW;
    localparam logic [SIMD-1:0] LASTMASK = {SIMD{1'b1}} >> (SIMD - LASTN);
    // the dot product: SIMD/SL slices of SL elements (one +-pixel, or a 4-bit XNOR-popcount), then a
    // registered binary adder tree of TD levels (docs/HARDWARE.md: the T term of the cycle formula)
    localparam int SL    = (IN_PIXELS != 0) ? 1 : ((SIMD < 4) ? SIMD : 4);
    localparam int NSL   = SIMD / SL;
    localparam int TD    = $clog2(NSL);
    localparam int ID    = 4 + TD;                    // issue stages up to the accumulator input (cycle count)
    localparam int WAITC = (PE > CH) ? PE - CH : 0;   // idle cycles after a group (hand-over free)
    localparam int ND    = (OUT_SCORES != 0) ? 8 : 5; // neuron stages (see the header; cycle count)
    // SHALLOW = 1 leaves out the registers of stage R (issue) and N2 (neuron: the read data are used as they
    // leave the memories), the adder tree's levels (one combinational sum of the slice dots) and the score's
    // N6/N7 (one 64-bit sum); the stages built up to the accumulator (IDB) and to d (DS) are fewer, and the
    // neuron valid chain nv is longer by what the issue side saves, so the drain ends on the same cycle and
    // the cycle count (metabnn.backends.rtl.layer_cycles) is the same at both settings.
    localparam int RS    = (SHALLOW != 0) ? 0 : 1;   // stage R and N2 built
    localparam int IDB   = 3 + RS + RS * TD;          // issue stages built up to the accumulator input
    localparam int DS    = 2 + RS;                    // the neuron stage whose register holds d
    localparam int SA    = DS + ((SHALLOW != 0) ? 3 : 5);  // SCORES: the stage whose register holds the score
    localparam int NVL   = ND + ID - IDB;             // neuron valid chain
    localparam int CBW   = (CH > 1) ? $clog2(CH) : 1;
    localparam int GBW   = (G > 1) ? $clog2(G) : 1;
    localparam int OBW   = (OCH > 1) ? $clog2(OCH) : 1;
    localparam int SBW   = (CPW > 1) ? $clog2(CPW) : 1;
    localparam int PBW   = (PE > 1) ? $clog2(PE) : 1;
    localparam int WTW   = (WAITC > 1) ? $clog2(WAITC + 1) : 1;
    localparam int GW    = G * W;                                  // wide sign words
    localparam int WAW   = (GW > 1) ? $clog2(GW) : 1;              // wide word address
    localparam int FAW   = (N * W > 1) ? $clog2(N * W) : 1;        // FORMAT word address (the write port's)
    localparam int NAW   = $clog2(BANKS * N + PE + 1);              // neuron-memory address, same
    localparam int JW    = $clog2(G * PE + 1);                      // neuron index within the image
    localparam int MAW   = (BANKS * N > 1) ? $clog2(BANKS * N) : 1; // neuron-memory index (extra lanes wrap)
    localparam int WG    = (SIMD < 8) ? SIMD : 8;                  // sign-word write granularity (bits)
    localparam int NWG   = 32 / WG;                                 // write groups (enables) per 32-bit word

    // ---------------------------------------------------------------- memories
    // Sign words: one wide word per group and word index, wmem[g*W + w] = the PE lanes' 32-bit words
    // w of neurons g*PE + p at [32p +: 32] (zero past N), so the lanes share one read port and every
    // sign bit is stored once. At PE = 1 this is FORMAT order. W_SPRAM = 1 keeps them in SPRAM instead.
    /* verilator lint_off UNUSEDSIGNAL */  // unused with W_SPRAM = 1
    logic [32*PE-1:0] wmem [0:GW-1];
    /* verilator lint_on UNUSEDSIGNAL */
    logic [31:0]      mmem [0:BANKS*N-1];
    initial $readmemh(M_FILE, mmem);
    if (W_SPRAM == 0) begin : g_winit
        if (PE == 1) begin : g_format
            initial $readmemh(W_FILE, wmem);
        end else if (WPE_FILE != "") begin : g_wide
            initial $readmemh(WPE_FILE, wmem);   // written by metabnn fpga (Yosys cannot rearrange)
        end else begin : g_rearrange
`ifdef SYNTHESIS
            $error("mbnn_layer: PE > 1 in synthesis needs WPE_FILE, the sign words in the wide layout");
`else
            logic [31:0] fmt [0:N*W-1];
            initial begin
                $readmemh(W_FILE, fmt);
                for (int a = 0; a < GW; a++) begin
                    logic [32*PE-1:0] v;
                    v = '0;
                    for (int p = 0; p < PE; p++)
                        if ((a / W) * PE + p < N) v[32*p +: 32] = fmt[((a / W) * PE + p) * W + a % W];
                    wmem[a] = v;
                end
            end
`endif
        end
    end

    // ---------------------------------------------------------------- control
    localparam logic [1:0] S_RUN = 2'd0, S_DRAIN = 2'd1, S_SEND = 2'd2;
    logic [1:0]     state;
    logic [GBW-1:0] g;            // group
    logic [CBW-1:0] c;            // chunk
    logic [SBW-1:0] sub;          // c % CPW
    logic [WAW-1:0] raddr;        // wide word address of the current chunk
    logic [WAW-1:0] rowaddr;      // wide word address of this group's rows (g * W)
    logic [WTW-1:0] waitc;
    logic [OBW-1:0] obeat;        // output beat (SIGN)
    logic [7:0]     bank_r;
    logic           adapt_r;
    logic [NAW-1:0] bankbase;     // bank_r * N
    logic           issue, any_v;
    logic           whold;        // SPRAM: a sign write's second cycle (mbnn_sign_spram.sv), no image starts

    assign in_ready = (state == S_RUN) && (g == '0) && !whold;
    assign issue    = (state == S_RUN) && (waitc == '0) && ((g != '0) || (in_valid && !whold));
    assign busy     = !((state == S_RUN) && (g == '0) && (c == '0) && !any_v);

    always_ff @(posedge clk) begin
        if (rst) begin
            state <= S_RUN;
            g <= '0; c <= '0; sub <= '0; raddr <= '0; rowaddr <= '0; waitc <= '0; obeat <= '0;
            bank_r <= '0; adapt_r <= 1'b0; bankbase <= '0;
        end else begin
            if (waitc != '0) waitc <= waitc - 1'b1;
            case (state)
                S_RUN: if (issue) begin
                    if (g == '0 && c == '0) begin
                        bank_r   <= (32'(in_bank) < BANKS) ? in_bank : 8'd0;
                        bankbase <= (32'(in_bank) < BANKS) ? NAW'(32'(in_bank) * N) : '0;
                        adapt_r  <= in_adapt;
                    end
                    if (32'(c) == CH - 1) begin
                        c <= '0; sub <= '0;
                        if (32'(g) == G - 1) begin
                            g <= '0; raddr <= '0; rowaddr <= '0;
                            state <= S_DRAIN;
                        end else begin
                            g <= g + 1'b1;
                            raddr   <= rowaddr + WAW'(W);
                            rowaddr <= rowaddr + WAW'(W);
                            waitc   <= WTW'(WAITC);
                        end
                    end else begin
                        c <= c + 1'b1;
                        if (32'(sub) == CPW - 1) begin sub <= '0; raddr <= raddr + 1'b1; end
                        else sub <= sub + 1'b1;
                    end
                end
                S_DRAIN: if (!any_v) begin
                    state <= S_SEND;
                    obeat <= '0;
                end
                default: if (out_ready) begin  // S_SEND
                    if (OUT_SCORES != 0 || 32'(obeat) == OCH - 1) state <= S_RUN;
                    else obeat <= obeat + 1'b1;
                end
            endcase
        end
    end

    // ---------------------------------------------------------------- issue pipeline
    // flags per stage 1..IDB: valid, first chunk of a row, last chunk, group 0
    logic [IDB:1] ip_v, ip_first, ip_last, ip_g0;
    always_ff @(posedge clk) begin
        if (rst) ip_v <= '0;
        else     ip_v <= {ip_v[IDB-1:1], issue};
        ip_first <= {ip_first[IDB-1:1], (c == '0)};
        ip_last  <= {ip_last[IDB-1:1], (32'(c) == CH - 1)};
        ip_g0    <= {ip_g0[IDB-1:1], (g == '0)};
    end

    // I: reads. The input buffer keeps group 0's chunks for the other groups.
    logic [IW*SIMD-1:0] ibuf [0:CH-1];
    logic [IW*SIMD-1:0] ibq, x1, xa2, xb2, x3;
    logic [SBW-1:0]     sub1, sub2;
    logic [SIMD-1:0]    mask1, mask2, mask3;
    always_ff @(posedge clk) begin
        if (issue && g == '0) ibuf[c] <= in_data;
        ibq   <= ibuf[c];
        x1    <= in_data;
        sub1  <= sub;
        mask1 <= (32'(c) == CH - 1) ? LASTMASK : {SIMD{1'b1}};
        // S: the chunk's input source
        x3    <= ip_g0[1 + RS] ? xa2 : xb2;
        mask3 <= mask2;
    end

    // ---------------------------------------------------------------- sign words: read and write ports
    // I: the wide word of this chunk, read for all lanes at once (block RAM or SPRAM, one cycle)
    logic [32*PE-1:0] wq;
    // the write port's FORMAT word address j*W + w -> neuron j's lane j % PE, wide address (j / PE)*W + w
    logic [FAW-1:0]   fa;
    logic [WAW-1:0]   wwa;
    logic [PBW-1:0]   wlane;
    logic             wwe;
    assign fa = FAW'(wr_addr);
    if (PE == 1) begin : g_wdec1
        assign wwa = WAW'(fa); assign wlane = '0;
    end else begin : g_wdec   // two constant divisions (mbnn_divc: multiplies, no divider)
        logic [FAW-1:0] fj, fw, fg;
        /* verilator lint_off UNUSEDSIGNAL */  // j % PE < PE
        logic [FAW-1:0] fl;
        /* verilator lint_on UNUSEDSIGNAL */
        mbnn_divc #(.D(W), .AW(FAW))  u_row  (.a(fa), .q(fj), .r(fw));
        mbnn_divc #(.D(PE), .AW(FAW)) u_lane (.a(fj), .q(fg), .r(fl));
        assign wwa = WAW'(32'(fg) * W + 32'(fw));
        assign wlane = PBW'(fl);
    end
    assign wwe = wr_en && wr_sel == 3'd0 && 32'(wr_addr) < N * W;
    // chunk-granular writes: group k of the word, bits [WG*k +: WG], is written where its enable wr_mask[WG*k]
    // is 1 (WG = 8, a byte, at SIMD >= 8, else one SIMD chunk), which block RAM maps to its byte enables (a
    // bit-masked port costs Yosys one 1-bit-wide DP16KD per bit). The mask must be the same over each group;
    // simulation stops on one that is not (the drivers and harnesses reject a host mask that is not bytes).
    /* verilator lint_off UNUSEDSIGNAL */  // the SPRAM takes wmx instead
    logic [NWG-1:0] wben;
    /* verilator lint_on UNUSEDSIGNAL */
    logic [31:0]    wmx;              // wben, one bit per sign bit (the SPRAM's mask)
    for (genvar k = 0; k < NWG; k++) begin : g_wben
        assign wben[k] = wr_mask[WG*k];
        assign wmx[WG*k +: WG] = {WG{wr_mask[WG*k]}};
    end
`ifndef SYNTHESIS
    always_ff @(posedge clk) begin
        if (wwe && wr_mask != wmx)
            $error("mbnn_layer: sign-word write mask %h is not constant over its %0d-bit groups", wr_mask, WG);
    end
`endif
    if (W_SPRAM == 0) begin : g_wbram
        always_ff @(posedge clk) begin
            wq <= wmem[raddr];
            for (int p = 0; p < PE; p++)
                for (int k = 0; k < NWG; k++)
                    if (wwe && 32'(wlane) == p && wben[k]) wmem[wwa][32*p + WG*k +: WG] <= wr_data[WG*k +: WG];
        end
        assign whold = 1'b0;
    end else begin : g_wspram
        mbnn_sign_spram #(.PE(PE), .DEPTH(GW), .RAW(WAW), .PBW(PBW)) u_wmem (
            .clk(clk), .rst(rst), .raddr(raddr), .rdata(wq), .we(wwe), .wa(wwa), .lane(wlane),
            .wdata(wr_data), .wmask(wmx), .hold(whold));
    end

    // ---------------------------------------------------------------- per lane: weights, dot, accumulator
    logic [AW*PE-1:0] accn_all;            // each lane's accumulator after this chunk
    logic [AW*PE-1:0] hold;                // a finished group's accumulators, handed to the normaliser
    for (genvar p = 0; p < PE; p++) begin : g_lane
        logic [31:0]             w2;
        logic [SIMD-1:0]         w3;
        logic [PW*NSL-1:0]       leaves;   // slice dots of this chunk
        logic signed [AW-1:0]    acc, accn;
        logic signed [PW-1:0]    dot;      // the chunk's dot product (the tree's root)
        for (genvar k = 0; k < NSL; k++) begin : g_slice
            localparam int SW = (IN_PIXELS != 0) ? $clog2(SL + 1) + 10 : $clog2(SL + 1) + 2;
            logic signed [SW-1:0] s;
            if (IN_PIXELS != 0) begin : g_pix
                mbnn_pixel_dot #(.SIMD(SL)) u_dot (.x(x3[8*SL*k +: 8*SL]), .w(w3[SL*k +: SL]),
                                                   .valid(mask3[SL*k +: SL]), .dot(s));
            end else begin : g_bits
                mbnn_xnor_popcount #(.SIMD(SL)) u_dot (.a(x3[SL*k +: SL]), .w(w3[SL*k +: SL]),
                                                       .valid(mask3[SL*k +: SL]), .dot(s));
            end
            assign leaves[PW*k +: PW] = PW'(s);
        end
        // lanes past N (last group) read zeros and are ignored downstream
        if (RS != 0) begin : g_tree
            logic [PW*(2*NSL-1)-1:0] tr;   // heap-ordered tree: node i = nodes 2i+1 + 2i+2, leaves from NSL-1
            always_ff @(posedge clk) begin
                w2 <= wq[32*p +: 32];
                tr[PW*(NSL-1) +: PW*NSL] <= leaves;
                for (int i = 0; i < NSL - 1; i++)
                    tr[PW*i +: PW] <= $signed(tr[PW*(2*i+1) +: PW]) + $signed(tr[PW*(2*i+2) +: PW]);
            end
            assign dot = $signed(tr[PW-1:0]);
        end else begin : g_sum           // SHALLOW: the slice dots registered, then one sum
            logic [PW*NSL-1:0] lv;
            always_ff @(posedge clk) lv <= leaves;
            assign w2 = wq[32*p +: 32];
            always_comb begin
                dot = '0;
                for (int i = 0; i < NSL; i++) dot = dot + $signed(lv[PW*i +: PW]);
            end
        end
        always_ff @(posedge clk) begin
            w3 <= w2[SIMD*sub2 +: SIMD];
            if (ip_v[IDB]) acc <= accn;
        end
        assign accn = (ip_first[IDB] ? AW'(0) : acc) + AW'(dot);
        assign accn_all[AW*p +: AW] = accn;
    end
    always_ff @(posedge clk) begin
        if (ip_v[IDB] && ip_last[IDB]) hold <= accn_all;
    end

    // ---------------------------------------------------------------- serial normaliser, one neuron a cycle
    logic           nbusy;
    logic [PBW-1:0] np;
    logic [NAW-1:0] naddr;
    logic [MAW-1:0] ridx;         // naddr as a memory index
    logic [JW-1:0]  nj;
    logic [NVL:1]   nv;
    always_ff @(posedge clk) begin
        if (rst) begin
            nbusy <= 1'b0; np <= '0; naddr <= '0; nj <= '0;
        end else begin
            if (nbusy) begin
                naddr <= naddr + 1'b1;
                nj    <= nj + 1'b1;
                if (32'(np) == PE - 1) begin np <= '0; nbusy <= 1'b0; end
                else np <= np + 1'b1;
            end
            if (ip_v[IDB] && ip_last[IDB]) begin   // a group's accumulators are ready (the neuron before is done)
                nbusy <= 1'b1;
                np    <= '0;
                if (ip_g0[IDB]) begin naddr <= bankbase; nj <= '0; end
            end
        end
    end
    always_ff @(posedge clk) begin
        if (rst) nv <= '0;
        else     nv <= {nv[NVL-1:1], nbusy};
    end
    assign any_v = (|ip_v) || nbusy || (|nv);

    // N1: memory reads; N2: read data registered (not with SHALLOW); N3 (N2 with SHALLOW): d
    logic signed [AW-1:0] acc1, acc2, d3;
    logic [31:0]          mq, m2;
    logic [JW-1:0]        j1, j2, j3;
    logic                 ok1, ok2, ok3;
    assign ridx = MAW'(naddr);
    always_ff @(posedge clk) begin
        acc1 <= $signed(hold[AW*np +: AW]);
        mq   <= mmem[ridx];
        j1   <= nj;
        ok1  <= 32'(nj) < N;
        d3   <= (acc2 <<< 8) - AW'($signed(m2));
        j3 <= j2; ok3 <= ok2;
    end
    // stage R (issue: x, sub, mask) and N2 (neuron: acc, M, j, ok): read data registered as they leave the
    // memories, or (SHALLOW) used as they are
    localparam int RSW = 2 * IW * SIMD + SBW + SIMD + AW + 32 + JW + 1;
    logic [RSW-1:0] rs_d, rs_q;
    assign rs_d = {x1, ibq, sub1, mask1, acc1, mq, j1, ok1};
    if (RS != 0) begin : g_rs
        always_ff @(posedge clk) rs_q <= rs_d;
    end else begin : g_rsbypass
        assign rs_q = rs_d;
    end
    assign {xa2, xb2, sub2, mask2, acc2, m2, j2, ok2} = rs_q;

    // the M memory's one write port: the adaptation's (below), else the host's (which writes only while the
    // layer is idle)
    logic           m_we;
    logic [MAW-1:0] m_wa;
    logic [31:0]    m_wd;
    if (ADAPT_SHIFT > 0) begin : g_adapt
        // stream-adaptive normalization (FORMAT.md 3.1): M <- M + rsr(d, ADAPT_SHIFT), N4 |d|, N5 round and
        // write (one stage later than d each). Built only where the model adapts this layer: a frozen layer
        // (ADAPT_SHIFT 0) has no |d|, rounding or M carried along, and the same cycle count.
        logic [31:0]    m3, m4, m5;
        logic [MAW-1:0] a1, a2, a3, a4, a5;
        logic           ak4, ak5;
        logic [AW-1:0]  mag4;
        /* verilator lint_off UNUSEDSIGNAL */  // |rsr(d, a)| < 2^31: the top bits are zero
        logic [AW-1:0]  q5;
        /* verilator lint_on UNUSEDSIGNAL */
        logic           sg4, sg5;
        always_ff @(posedge clk) begin
            a1 <= ridx;
            m3 <= m2; a3 <= a2;
            mag4 <= d3[AW-1] ? AW'(-d3) : AW'(d3);
            sg4  <= d3[AW-1];
            m4 <= m3; a4 <= a3; ak4 <= ok3;
            q5   <= (mag4 + (AW'(1) << (ADAPT_SHIFT - 1))) >> ADAPT_SHIFT;
            sg5  <= sg4;
            m5 <= m4; a5 <= a4; ak5 <= ak4;
        end
        if (RS != 0) begin : g_a2
            always_ff @(posedge clk) a2 <= a1;
        end else begin : g_a2bypass
            assign a2 = a1;
        end
        always_comb begin
            m_we = 1'b0; m_wa = a5; m_wd = sg5 ? m5 - q5[31:0] : m5 + q5[31:0];
            if (nv[DS + 2] && adapt_r && ak5) m_we = 1'b1;
            else if (wr_en && wr_sel == 3'd1) begin
                m_we = 1'b1; m_wa = MAW'(wr_addr); m_wd = wr_data;
            end
        end
    end else begin : g_frozen
        assign m_we = wr_en && wr_sel == 3'd1;
        assign m_wa = MAW'(wr_addr);
        assign m_wd = wr_data;
    end
    always_ff @(posedge clk) begin
        if (m_we) mmem[m_wa] <= m_wd;
    end

    if (OUT_SCORES == 0) begin : g_sign
        logic [31:0]     cmem [0:BANKS*N-1];
        logic [0:0]      fmem [0:BANKS*N-1];
        logic [31:0]     cq, c2, c3;
        logic [0:0]      fq, f2, f3;
        logic [OSRW-1:0] osr;          // output bits, one shifted in per neuron: osr[j] = out_j at the end
        logic [OPW-1:0]  opad;
        initial begin
            $readmemh(C_FILE, cmem);
            $readmemh(F_FILE, fmem);
        end
        if (RS != 0) begin : g_c2
            always_ff @(posedge clk) begin c2 <= cq; f2 <= fq; end
        end else begin : g_c2bypass
            assign c2 = cq; assign f2 = fq;
        end
        always_ff @(posedge clk) begin
            cq <= cmem[ridx];
            fq <= fmem[ridx];
            c3 <= c2; f3 <= f2;
            // N4 (N3 with SHALLOW): the output bit
            if (nv[DS]) osr <= {(d3 >= AW'($signed(c3))) ^ f3[0], osr[OSRW-1:1]};
            if (wr_en && wr_sel == 3'd2) cmem[wr_addr] <= wr_data;
            if (wr_en && wr_sel == 3'd3) fmem[wr_addr] <= wr_data[0:0];
        end
        always_comb begin
            opad = '0;
            opad[N-1:0] = osr[N-1:0];
        end
        assign out_data  = opad[SIMD*obeat +: SIMD];
        assign out_class = 16'd0;
        assign out_score = 64'd0;
        /* verilator lint_off UNUSEDSIGNAL */  // the neuron index and its flag are the argmax's (and adaptation's)
        logic [JW:0] j_unused;
        /* verilator lint_on UNUSEDSIGNAL */
        assign j_unused = {ok3, j3};
    end else begin : g_scores
        logic [31:0]          gmem [0:BANKS*N-1];
        logic [63:0]          bmem [0:BANKS*N-1];
        logic [31:0]          gq, g2, g3;
        logic [63:0]          bq, b2, b3, b4;
        // g*d mod 2^64 with g, d as unsigned words gu, du and their signs sg, sd:
        //   g*d = gu*du - sg*(du << 32) - sd*(gu << 34)  (mod 2^64)
        //   gu*du = g0 d0 + (g0 d1 + g1 d0) << 16 + (g1 d1 + g0 d2) << 32 + g1 d2 << 48  (16-bit limbs, d2 2 bits)
        // four 16x16 unsigned products (one DSP each on ECP5 and iCE40), the rest adders, one per stage.
        logic [31:0]          pp00, pp01, pp10, pp11;
        logic [17:0]          t02;
        /* verilator lint_off UNUSEDSIGNAL */
        logic [17:0]          t12;
        /* verilator lint_on UNUSEDSIGNAL */
        logic [63:0]          cg, cd, s8;
        logic [63:0]          e1, e2, e3, e4, e5;
        logic [JW-1:0]        j8;
        logic                 o8;
        logic                 v8;          // s8, j8, o8 (the score, its neuron and in-range flag) valid
        logic signed [63:0]   best;
        logic [JW-1:0]        bidx;
        logic                 have;
        logic [AW-1:0]        du;
        assign du = AW'(d3);
        initial begin
            $readmemh(G_FILE, gmem);
            $readmemh(B_FILE, bmem);
        end
        if (RS != 0) begin : g_gb2
            always_ff @(posedge clk) begin g2 <= gq; b2 <= bq; end
        end else begin : g_gb2bypass
            assign g2 = gq; assign b2 = bq;
        end
        // the neuron index and its in-range flag, from d's stage to the score's (SA)
        logic [(JW+1)*(SA-DS)-1:0] jo;
        always_ff @(posedge clk) jo <= {jo[(JW+1)*(SA-DS-1)-1:0], ok3, j3};
        assign {o8, j8} = jo[(JW+1)*(SA-DS-1) +: JW+1];
        always_ff @(posedge clk) begin
            gq <= gmem[ridx];
            bq <= bmem[ridx];
            g3 <= g2; b3 <= b2;
            // N4: products
            pp00 <= 32'(g3[15:0])  * 32'(du[15:0]);
            pp01 <= 32'(g3[15:0])  * 32'(du[31:16]);
            pp10 <= 32'(g3[31:16]) * 32'(du[15:0]);
            pp11 <= 32'(g3[31:16]) * 32'(du[31:16]);
            t02  <= (du[32] ? 18'(g3[15:0]) : 18'd0)  + (du[33] ? {1'b0, g3[15:0], 1'b0} : 18'd0);
            t12  <= (du[32] ? 18'(g3[31:16]) : 18'd0) + (du[33] ? {1'b0, g3[31:16], 1'b0} : 18'd0);
            cg   <= g3[31] ? {du[31:0], 32'd0} : 64'd0;
            cd   <= du[AW-1] ? {g3[29:0], 34'd0} : 64'd0;
            b4   <= b3;
            // N5: partial sums
            e1 <= 64'(pp00) + {16'd0, pp01, 16'd0};
            e2 <= {16'd0, pp10, 16'd0} + {pp11, 32'd0};
            e3 <= {14'd0, t02, 32'd0} + {t12[15:0], 48'd0};  // t12's top bits fall past 2^64
            e4 <= b4 - cg;
            e5 <= cd;
            if (wr_en && wr_sel == 3'd4) gmem[wr_addr] <= wr_data;
            if (wr_en && wr_sel == 3'd5) bmem[wr_addr][31:0] <= wr_data;
            if (wr_en && wr_sel == 3'd6) bmem[wr_addr][63:32] <= wr_data;
        end
        if (SHALLOW == 0) begin : g_sum3
            logic [63:0] s1, s2, s3, u1, u2;
            always_ff @(posedge clk) begin   // N6, N7, N8
                s1 <= e1 + e2; s2 <= e3 + e4; s3 <= e5;
                u1 <= s1 + s2; u2 <= s3;
                s8 <= u1 - u2;
            end
        end else begin : g_sum1              // SHALLOW: N6, the whole sum
            always_ff @(posedge clk) s8 <= e1 + e2 + e3 + e4 - e5;
        end
        assign v8 = nv[SA];
        // running argmax over the neurons in order, strict > so the lowest index wins a tie. The compare
        // feeds back into itself (best), so it cannot be pipelined: two 32-bit halves side by side instead
        // of one 64-bit carry chain (the critical path of the whole engine before).
        logic gt_hi, eq_hi, gt_lo, gt;
        assign gt_hi = $signed(s8[63:32]) > $signed(best[63:32]);
        assign eq_hi = s8[63:32] == best[63:32];
        assign gt_lo = s8[31:0] > best[31:0];
        assign gt    = gt_hi || (eq_hi && gt_lo);
        always_ff @(posedge clk) begin
            if (rst || (state == S_SEND && out_ready)) have <= 1'b0;
            else if (v8 && o8 && (!have || gt)) begin
                best <= $signed(s8);
                bidx <= j8;
                have <= 1'b1;
            end
        end
        assign out_data  = '0;
        assign out_class = 16'(bidx);
        assign out_score = best;
    end

    assign out_valid = (state == S_SEND);
    assign out_bank  = bank_r;
    assign out_adapt = adapt_r;
endmodule
