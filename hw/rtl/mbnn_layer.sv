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
// vector costs no extra cycles. After the last issue the pipeline drains (3 cycles) and the result is
// sent: SIGN ceil(N/SIMD) beats (the next layer consumes them during its own group 0), SCORES 1 beat.
// Pipeline: A issue (weight word read) -> B accumulate (norm read on a group's last chunk)
//           -> C normalise, compare / score, adapt write -> D argmax (SCORES).
//
// Memories (initialised with $readmemh from the exporter's files, docs/FORMAT.md section 7), all in
// FORMAT order, so the update unit and the host address them exactly like the .mbnn arrays:
//   sign words  wmem[j*W + w]   32-bit packed weights of neuron j (W = ceil(K/32) words per row)
//   M           mmem[bank*N + j] int32;  SIGN: C cmem, f fmem;  SCORES: g gmem (int32), b bmem (int64)
// Write port (wr_*): wr_sel 0 sign word (bits where wr_mask is 1 are written, the others kept),
// 1 M, 2 C, 3 f (bit 0), 4 g, 5 b[31:0], 6 b[63:32]; one write per cycle, takes effect the next cycle.
// Write only while `busy` is 0, else an image in flight may see half-old, half-new weights.
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
    parameter W_FILE = "w.hex",
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

    // ---------------------------------------------------------------- memories
    logic [31:0] wmem [0:N*W-1];
    logic [31:0] mmem [0:BANKS*N-1];
    initial begin
        $readmemh(W_FILE, wmem);
        $readmemh(M_FILE, mmem);
    end

    // ---------------------------------------------------------------- control
    localparam logic [1:0] S_RUN = 2'd0, S_DRAIN = 2'd1, S_SEND = 2'd2;
    logic [1:0]  state;
    logic [31:0] g, c;            // group and chunk counters
    logic [31:0] sub, cw;         // c % CPW and c / CPW
    logic [31:0] rowbase;         // g * PE
    logic [31:0] wbase;           // g * PE * W
    logic [31:0] obeat;           // output beat (SIGN)
    logic [7:0]  bank_r;
    logic        adapt_r;
    logic [31:0] bankbase;        // bank_r * N

    logic a_valid, b_valid, c_valid;
    logic issue;

    assign in_ready = (state == S_RUN) && (g == 0);
    assign issue    = (state == S_RUN) && ((g != 0) || in_valid);
    assign busy     = !((state == S_RUN) && (g == 0) && (c == 0) && !a_valid && !b_valid && !c_valid);

    always_ff @(posedge clk) begin
        if (rst) begin
            state <= S_RUN;
            g <= '0; c <= '0; sub <= '0; cw <= '0; rowbase <= '0; wbase <= '0; obeat <= '0;
            bank_r <= '0; adapt_r <= 1'b0; bankbase <= '0;
        end else begin
            case (state)
                S_RUN: if (issue) begin
                    if (g == 0 && c == 0) begin
                        bank_r   <= (32'(in_bank) < BANKS) ? in_bank : 8'd0;
                        bankbase <= (32'(in_bank) < BANKS) ? 32'(in_bank) * N : 32'd0;
                        adapt_r  <= in_adapt;
                    end
                    if (c == CH - 1) begin
                        c <= '0; sub <= '0; cw <= '0;
                        if (g == G - 1) begin
                            g <= '0; rowbase <= '0; wbase <= '0;
                            state <= S_DRAIN;
                        end else begin
                            g <= g + 1; rowbase <= rowbase + PE; wbase <= wbase + PE * W;
                        end
                    end else begin
                        c <= c + 1;
                        if (sub == CPW - 1) begin sub <= '0; cw <= cw + 1; end
                        else sub <= sub + 1;
                    end
                end
                S_DRAIN: if (!a_valid && !b_valid && !c_valid) begin
                    state <= S_SEND;
                    obeat <= '0;
                end
                default: if (out_ready) begin  // S_SEND
                    if (OUT_SCORES != 0 || obeat == OCH - 1) state <= S_RUN;
                    else obeat <= obeat + 1;
                end
            endcase
        end
    end

    // ---------------------------------------------------------------- stage A: issue
    logic [IW*SIMD-1:0] ibuf [0:CH-1];
    logic [IW*SIMD-1:0] a_x;
    logic [SIMD-1:0]    a_mask;
    logic [31:0]        a_sub, a_row;
    logic               a_first, a_last;
    logic [32*PE-1:0]   a_w;

    always_ff @(posedge clk) begin
        if (issue && g == 0) ibuf[c] <= in_data;
        if (issue) begin
            a_x     <= (g == 0) ? in_data : ibuf[c];
            a_mask  <= (c == CH - 1) ? LASTMASK : {SIMD{1'b1}};
            a_sub   <= sub;
            a_row   <= rowbase;
            a_first <= (c == 0);
            a_last  <= (c == CH - 1);
        end
    end
    always_ff @(posedge clk) begin
        if (rst) a_valid <= 1'b0;
        else     a_valid <= issue;
    end

    // one read port per lane; lanes past N (last group) read row 0 and are ignored
    for (genvar p = 0; p < PE; p++) begin : g_wread
        always_ff @(posedge clk) begin
            if (issue) a_w[32*p +: 32] <= (rowbase + p < N) ? wmem[wbase + p * W + cw] : 32'd0;
        end
    end

    // ---------------------------------------------------------------- stage B: accumulate
    logic signed [AW-1:0] acc [0:PE-1];
    logic [31:0]          b_row;
    logic [32*PE-1:0]     b_m;
    /* verilator lint_off UNUSEDSIGNAL */  // the M write address: used only when ADAPT_SHIFT > 0
    logic [31:0]          b_naddr [0:PE-1];
    /* verilator lint_on UNUSEDSIGNAL */

    for (genvar p = 0; p < PE; p++) begin : g_acc
        logic [SIMD-1:0]        wchunk;
        logic signed [PW-1:0]   part;
        assign wchunk = a_w[32*p + SIMD*a_sub +: SIMD];
        if (IN_PIXELS != 0) begin : g_pix
            mbnn_pixel_dot #(.SIMD(SIMD)) u_dot (.x(a_x), .w(wchunk), .valid(a_mask), .dot(part));
        end else begin : g_bits
            mbnn_xnor_popcount #(.SIMD(SIMD)) u_dot (.a(a_x), .w(wchunk), .valid(a_mask), .dot(part));
        end
        always_ff @(posedge clk) begin
            if (a_valid) acc[p] <= (a_first ? AW'(0) : acc[p]) + AW'(part);
            if (a_valid && a_last) begin
                b_naddr[p]     <= (a_row + p < N) ? bankbase + a_row + p : 32'd0;
                b_m[32*p +: 32] <= (a_row + p < N) ? mmem[bankbase + a_row + p] : 32'd0;
            end
        end
    end
    always_ff @(posedge clk) begin
        if (a_valid && a_last) b_row <= a_row;
        if (rst) b_valid <= 1'b0;
        else     b_valid <= a_valid && a_last;
    end

    // ---------------------------------------------------------------- stage C: normalise
    logic signed [AW-1:0] d [0:PE-1];
    /* verilator lint_off UNUSEDSIGNAL */  // used by the adaptation and the argmax, not by a frozen SIGN layer
    logic [PE-1:0]        lane_ok;     // neuron b_row + p exists
    /* verilator lint_on UNUSEDSIGNAL */
    for (genvar p = 0; p < PE; p++) begin : g_norm
        assign d[p]       = (acc[p] <<< 8) - AW'($signed(b_m[32*p +: 32]));
        assign lane_ok[p] = (b_row + p < N);
    end

    // stream-adaptive normalization (FORMAT.md 3.1): M <- M + rsr(d, ADAPT_SHIFT)
    if (ADAPT_SHIFT > 0) begin : g_adapt
        for (genvar p = 0; p < PE; p++) begin : g_lane
            logic [AW-1:0]        mag;
            logic [AW-1:0]        q;
            /* verilator lint_off UNUSEDSIGNAL */  // |rsr(d, a)| < 2^31: the top bits are sign copies
            logic signed [AW-1:0] r;
            /* verilator lint_on UNUSEDSIGNAL */
            logic [31:0]          mnew;
            assign mag  = d[p][AW-1] ? AW'(-d[p]) : AW'(d[p]);
            assign q    = (mag + (AW'(1) << (ADAPT_SHIFT - 1))) >> ADAPT_SHIFT;
            assign r    = d[p][AW-1] ? -$signed(q) : $signed(q);
            assign mnew = b_m[32*p +: 32] + r[31:0];
            always_ff @(posedge clk) begin
                if (b_valid && adapt_r && lane_ok[p]) mmem[b_naddr[p]] <= mnew;
            end
        end
    end
    always_ff @(posedge clk) begin
        if (wr_en && wr_sel == 3'd1) mmem[wr_addr] <= wr_data;
        if (wr_en && wr_sel == 3'd0) begin
            for (int i = 0; i < 32; i++) if (wr_mask[i]) wmem[wr_addr][i] <= wr_data[i];
        end
    end

    always_ff @(posedge clk) begin
        if (rst) c_valid <= 1'b0;
        else     c_valid <= b_valid && (OUT_SCORES != 0);
    end

    if (OUT_SCORES == 0) begin : g_sign
        logic [31:0]     cmem [0:BANKS*N-1];
        logic [0:0]      fmem [0:BANKS*N-1];
        logic [32*PE-1:0] b_c;
        logic [PE-1:0]   b_f;
        logic [PE-1:0]   bits;
        logic [OSRW-1:0] osr;          // output bits, shifted in PE at a time: osr[j] = out_j at the end
        logic [OPW-1:0]  opad;
        /* verilator lint_off UNUSEDSIGNAL */  // the PE bits shifted out are dropped
        logic [OSRW+PE-1:0] shifted;
        /* verilator lint_on UNUSEDSIGNAL */
        initial begin
            $readmemh(C_FILE, cmem);
            $readmemh(F_FILE, fmem);
        end
        for (genvar p = 0; p < PE; p++) begin : g_cmp
            always_ff @(posedge clk) begin
                if (a_valid && a_last) begin
                    b_c[32*p +: 32] <= (a_row + p < N) ? cmem[bankbase + a_row + p] : 32'd0;
                    b_f[p]          <= (a_row + p < N) ? fmem[bankbase + a_row + p][0] : 1'b0;
                end
            end
            assign bits[p] = (d[p] >= AW'($signed(b_c[32*p +: 32]))) ^ b_f[p];
        end
        assign shifted = {bits, osr};
        always_ff @(posedge clk) begin
            if (b_valid) osr <= shifted[OSRW+PE-1:PE];
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
    end else begin : g_scores
        logic [31:0]          gmem [0:BANKS*N-1];
        logic [63:0]          bmem [0:BANKS*N-1];
        logic [32*PE-1:0]     b_g;
        logic [64*PE-1:0]     b_b;
        logic [64*PE-1:0]     c_s;
        logic [PE-1:0]        c_ok;
        logic [31:0]          c_row;
        logic signed [63:0]   best, best_n;
        logic [31:0]          bidx, bidx_n;
        logic                 have, have_n;
        initial begin
            $readmemh(G_FILE, gmem);
            $readmemh(B_FILE, bmem);
        end
        for (genvar p = 0; p < PE; p++) begin : g_score
            always_ff @(posedge clk) begin
                if (a_valid && a_last) begin
                    b_g[32*p +: 32] <= (a_row + p < N) ? gmem[bankbase + a_row + p] : 32'd0;
                    b_b[64*p +: 64] <= (a_row + p < N) ? bmem[bankbase + a_row + p] : 64'd0;
                end
                if (b_valid) c_s[64*p +: 64] <= 64'($signed(b_g[32*p +: 32])) * 64'(d[p])
                                              + $signed(b_b[64*p +: 64]);
            end
        end
        always_ff @(posedge clk) begin
            if (b_valid) begin
                c_ok  <= lane_ok;
                c_row <= b_row;
            end
            if (wr_en && wr_sel == 3'd4) gmem[wr_addr] <= wr_data;
            if (wr_en && wr_sel == 3'd5) bmem[wr_addr][31:0] <= wr_data;
            if (wr_en && wr_sel == 3'd6) bmem[wr_addr][63:32] <= wr_data;
        end
        // stage D: running argmax over lanes then groups, strict > so the lowest index wins a tie
        always_comb begin
            best_n = best;
            bidx_n = bidx;
            have_n = have;
            for (int p = 0; p < PE; p++) begin
                if (c_ok[p] && (!have_n || $signed(c_s[64*p +: 64]) > best_n)) begin
                    best_n = $signed(c_s[64*p +: 64]);
                    bidx_n = c_row + p;
                    have_n = 1'b1;
                end
            end
        end
        always_ff @(posedge clk) begin
            if (rst || (state == S_SEND && out_ready)) have <= 1'b0;
            else if (c_valid) begin
                best <= best_n;
                bidx <= bidx_n;
                have <= have_n;
            end
        end
        assign out_data  = '0;
        assign out_class = bidx[15:0];
        assign out_score = best;
    end

    assign out_valid = (state == S_SEND);
    assign out_bank  = bank_r;
    assign out_adapt = adapt_r;
endmodule
