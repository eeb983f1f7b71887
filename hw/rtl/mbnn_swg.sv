// Sliding-window input generator of a binary conv2d layer (docs/FORMAT.md 3.3), as FINN's
// ConvolutionInputGenerator: it turns a feature map, streamed position by position, into the im2col rows the dot
// engine (mbnn_layer's XNOR-popcount / pixel dot) consumes, one K = C k^2 vector per output position.
//
// Input stream: the map in raster order (y, then x), each position's C channels in IB = ceil(C / SIMD_IN) beats of
// SIMD_IN elements (channel c at element c mod SIMD_IN of beat c / SIMD_IN; elements past C ignored): the packed
// layout of FORMAT.md 3.3 and exactly what mbnn_layer's SIGN output sends per vector (SIMD_IN = its SIMD). Elements
// are 1 bit (+-1 signs, bit 1 = +1) or, with IN_PIXELS, uint8 pixels (the first layer, C = 1 for greyscale).
// Output stream: per output position (raster order, OH x OW of them), CH = ceil(K / SIMD) beats of SIMD elements;
// element i of the vector (beat i / SIMD, lane i mod SIMD) is synapse i = (ky k + kx) C + c, the value at input
// (y, x) = (oy s + ky - p, ox s + kx - p), channel c. `out_mask` marks the in-image taps: a padding tap (y or x off
// the image) has mask 0 and data 0, and so has every lane past K in the last beat. FORMAT.md's padding is zero
// (the tap contributes nothing): for pixels, data 0 already adds nothing in mbnn_pixel_dot; for bits the mask is
// what the dot must AND into its `valid` lanes (acc = K_in - 2 popcount((a XOR w) AND mask)). `out_last` is 1 on
// the last beat of a vector, `out_end` on every beat of the image's last vector.
//
// Buffer: a line buffer of ROWS input rows (simple dual-port memory, ROWS * W * IB words of SIMD_IN elements; the
// read data goes straight into a register, so it can be block RAM). Row y lives in slot y mod ROWS. A row is written
// only when the window of the output row being generated no longer needs its slot (y < max(0, oy s - p) + ROWS);
// an output row is generated once the input rows it reads (up to oy s - p + k - 1, within the image) are in.
// ROWS >= k is enough (never a deadlock); ROWS = k + s lets the next rows arrive while a row is generated.
// One image at a time: the next image's rows are accepted once the last vector of this one has been read out of
// the buffer (its in-flight beats drain on their own).
//
// Schedule: per output position, one buffer read per (tap, input beat), k^2 IB cycles, shifted into a gather
// register (exactly C elements per tap, so K elements per position, none left over), then one cycle before the
// next position's reads start; the gathered vector moves to the output register, which sends its CH beats while
// the next one is gathered. mbnn_layer reads an input vector once (during its first neuron group) and spends
// ceil(K/SIMD) ceil(N/PE) cycles on it, so this generator keeps up when k^2 IB + 1 <= that.
//
// Reset: synchronous, active high; it drops the image in flight (buffer contents are don't-care).
module mbnn_swg #(
    parameter int C = 1,          // input channels
    parameter int H = 28,         // input rows
    parameter int W = 28,         // input columns
    parameter int KS = 3,         // kernel side k
    parameter int S = 1,          // stride s
    parameter int P = 1,          // zero padding p, 0 <= p < k
    parameter int IN_PIXELS = 1,  // 1: uint8 elements; 0: sign bits
    parameter int SIMD_IN = 1,    // elements per input beat
    parameter int SIMD = 8,       // elements per output beat
    parameter int ROWS = KS + S   // buffered input rows, >= KS
) (
    input  logic                       clk,
    input  logic                       rst,
    input  logic                       in_valid,
    output logic                       in_ready,
    input  logic [((IN_PIXELS != 0) ? 8 : 1)*SIMD_IN-1:0] in_data,
    output logic                       out_valid,
    input  logic                       out_ready,
    output logic [((IN_PIXELS != 0) ? 8 : 1)*SIMD-1:0] out_data,
    output logic [SIMD-1:0]            out_mask,
    output logic                       out_last,
    output logic                       out_end
);
    localparam int IW    = (IN_PIXELS != 0) ? 8 : 1;
    localparam int IB    = (C + SIMD_IN - 1) / SIMD_IN;       // input beats per position
    localparam int LASTB = C - (IB - 1) * SIMD_IN;            // elements in a position's last input beat
    localparam int OH    = (H + 2 * P - KS) / S + 1;
    localparam int OW    = (W + 2 * P - KS) / S + 1;
    localparam int K     = C * KS * KS;                       // vector length
    localparam int CH    = (K + SIMD - 1) / SIMD;             // output beats per vector
    localparam int DEPTH = ROWS * W * IB;
    localparam int AW    = (DEPTH > 1) ? $clog2(DEPTH) : 1;
    localparam int CW    = 16;                                // signed row/column coordinates
    localparam int TW    = (K + SIMD_IN) * IW;                // shift-in temporary
    localparam int EW    = CH * SIMD;                         // output register, elements
    localparam int RBW   = $clog2(ROWS + 1);
    localparam int KBW   = $clog2(KS + 1);
    localparam int IBW   = $clog2(IB + 1);
    localparam int XBW   = $clog2(W + 1);
    localparam int HBW   = $clog2(H + 1);
    localparam int OXW   = $clog2(OW + 1);
    localparam int OYW   = $clog2(OH + 1);
    localparam int CBW   = $clog2(CH + 1);
    localparam int NSH   = (K > SIMD_IN) ? K - SIMD_IN : 0;  // where a full beat enters (used only when IB > 1)
    localparam logic [RBW-1:0] SLOT0 = RBW'((ROWS - (P % ROWS)) % ROWS);  // slot of row -p
    localparam logic [RBW-1:0] SSTEP = RBW'(S % ROWS);

    if (C < 1 || H < 1 || W < 1 || KS < 1 || S < 1 || P < 0 || P >= KS || H + 2 * P < KS || W + 2 * P < KS
        || SIMD_IN < 1 || SIMD < 1 || ROWS < KS || H > 1024 || W > 1024) begin : g_bad_params
        $error("mbnn_swg: need C, H, W, KS, S, SIMD_IN, SIMD >= 1, 0 <= P < KS, the kernel inside the padded map, ROWS >= KS, H, W <= 1024");
    end

    logic [SIMD_IN*IW-1:0] mem [0:DEPTH-1];

    // ---------------------------------------------------------------- reader state (declared first: the writer reads it)
    logic signed [CW-1:0] y0, x0;     // top-left input coordinate of the current window: oy s - p, ox s - p
    logic [RBW-1:0]       y0slot;     // y0 mod ROWS
    logic [OXW-1:0]       ox;
    logic [OYW-1:0]       oy;
    logic [KBW-1:0]       ky, kx;
    logic [IBW-1:0]       rb;
    logic                 rd_done;    // every read of this image issued

    // ---------------------------------------------------------------- writer
    logic [XBW-1:0] wx;
    logic [IBW-1:0] wb;
    logic [HBW-1:0] wy;               // rows completely written; H = the whole image
    logic [RBW-1:0] wslot;            // wy mod ROWS
    logic signed [CW-1:0] lo;         // lowest row the current window (and every later one) reads
    logic           wr_ok, wr;
    logic [AW-1:0]  waddr;

    assign lo       = (y0 > 0) ? y0 : CW'(0);
    assign wr_ok    = rd_done || ($signed(CW'(wy)) < lo + $signed(CW'(ROWS)));
    assign in_ready = (32'(wy) < H) && wr_ok;
    assign wr       = in_valid && in_ready;
    assign waddr    = AW'((32'(wslot) * W + 32'(wx)) * IB + 32'(wb));

    logic img_wrap;                   // this image completely read and written: both sides start the next
    assign img_wrap = rd_done && (32'(wy) == H);

    always_ff @(posedge clk) begin
        if (wr) mem[waddr] <= in_data;
    end

    always_ff @(posedge clk) begin
        if (rst || img_wrap) begin
            wx <= '0; wb <= '0; wy <= '0; wslot <= '0;
        end else if (wr) begin
            if (32'(wb) == IB - 1) begin
                wb <= '0;
                if (32'(wx) == W - 1) begin
                    wx <= '0;
                    wy <= wy + 1'b1;
                    wslot <= (32'(wslot) == ROWS - 1) ? '0 : wslot + 1'b1;
                end else begin
                    wx <= wx + 1'b1;
                end
            end else begin
                wb <= wb + 1'b1;
            end
        end
    end

    // ---------------------------------------------------------------- reader: one buffer read per (tap, beat)
    logic signed [CW-1:0] ty, tx;
    logic                 in_img, rows_in, issue, last_read, pos_end, img_end;
    logic [RBW:0]         tslot_w;
    logic [RBW-1:0]       tslot;
    logic [AW-1:0]        raddr;
    // pipeline stage after the read: the read data and what the shift-in needs
    logic                 p_valid, p_inside, p_lastbeat, p_last, p_end;
    logic [SIMD_IN*IW-1:0] rdata;
    // gather register and output register
    logic [K*IW-1:0]      gv;
    logic [K-1:0]         gm;
    logic                 g_full, g_end;
    logic [EW*IW-1:0]     ev;
    logic [EW-1:0]        em;
    logic                 e_valid, e_end;
    logic [CBW-1:0]       e_beat;
    logic                 xfer, e_take;

    assign ty      = y0 + $signed(CW'(ky));
    assign tx      = x0 + $signed(CW'(kx));
    assign in_img  = (ty >= 0) && (ty < $signed(CW'(H))) && (tx >= 0) && (tx < $signed(CW'(W)));
    assign tslot_w = {1'b0, y0slot} + (RBW + 1)'(ky);
    assign tslot   = (32'(tslot_w) >= ROWS) ? RBW'(32'(tslot_w) - ROWS) : RBW'(tslot_w);
    assign raddr   = in_img ? AW'((32'(tslot) * W + 32'(tx)) * IB + 32'(rb)) : '0;
    // the rows this output row reads are in: all of them, or every row up to y0 + k - 1
    assign rows_in = (32'(wy) == H) || ($signed(CW'(wy)) > y0 + $signed(CW'(KS - 1)));
    assign e_take  = e_valid && out_ready;
    assign xfer    = g_full && (!e_valid || (e_take && 32'(e_beat) == CH - 1));
    assign issue   = !rd_done && rows_in && !(p_valid && p_last) && (!g_full || xfer);
    assign last_read = (32'(rb) == IB - 1) && (32'(kx) == KS - 1) && (32'(ky) == KS - 1);
    assign pos_end = issue && last_read;
    assign img_end = pos_end && (32'(ox) == OW - 1) && (32'(oy) == OH - 1);

    always_ff @(posedge clk) begin
        rdata <= mem[raddr];
    end

    always_ff @(posedge clk) begin
        if (rst) begin
            y0 <= -CW'(P); x0 <= -CW'(P); y0slot <= SLOT0; ox <= '0; oy <= '0;
            ky <= '0; kx <= '0; rb <= '0; rd_done <= 1'b0;
            p_valid <= 1'b0; p_inside <= 1'b0; p_lastbeat <= 1'b0; p_last <= 1'b0; p_end <= 1'b0;
        end else begin
            p_valid    <= issue;
            p_inside   <= in_img;
            p_lastbeat <= (32'(rb) == IB - 1);
            p_last     <= last_read;
            p_end      <= img_end;
            if (img_wrap) rd_done <= 1'b0;
            if (issue) begin
                if (32'(rb) != IB - 1) begin
                    rb <= rb + 1'b1;
                end else begin
                    rb <= '0;
                    if (32'(kx) != KS - 1) begin
                        kx <= kx + 1'b1;
                    end else begin
                        kx <= '0;
                        if (32'(ky) != KS - 1) begin
                            ky <= ky + 1'b1;
                        end else begin
                            ky <= '0;
                            // the window's last read: on to the next output position
                            if (32'(ox) != OW - 1) begin
                                ox <= ox + 1'b1;
                                x0 <= x0 + $signed(CW'(S));
                            end else begin
                                ox <= '0;
                                x0 <= -CW'(P);
                                if (32'(oy) != OH - 1) begin
                                    oy <= oy + 1'b1;
                                    y0 <= y0 + $signed(CW'(S));
                                    y0slot <= (32'(y0slot) + 32'(SSTEP) >= ROWS) ? RBW'(32'(y0slot) + 32'(SSTEP) - ROWS)
                                                                                 : y0slot + SSTEP;
                                end else begin
                                    oy <= '0;
                                    y0 <= -CW'(P);
                                    y0slot <= SLOT0;
                                    rd_done <= 1'b1;
                                end
                            end
                        end
                    end
                end
            end
        end
    end

    // ---------------------------------------------------------------- shift-in: C elements per tap, K per position
    // the beat's n elements (SIMD_IN, or LASTB for a position's last beat) enter at the top, the register moves down
    // by n, so after the window's last read element 0 is at the bottom; a padding tap enters zeros with mask 0
    /* verilator lint_off UNUSEDSIGNAL */  // the elements pushed past the top (a last beat's padding) are dropped
    logic [TW-1:0]        gv_next;
    logic [K+SIMD_IN-1:0] gm_next;
    /* verilator lint_on UNUSEDSIGNAL */
    always_comb begin
        gv_next = '0;
        gm_next = '0;
        if (p_lastbeat) begin
            gv_next = (TW'(gv) >> (LASTB * IW)) | (TW'(p_inside ? rdata : '0) << ((K - LASTB) * IW));
            gm_next = ((K + SIMD_IN)'(gm) >> LASTB) | ((K + SIMD_IN)'({SIMD_IN{p_inside}}) << (K - LASTB));
        end else begin
            gv_next = (TW'(gv) >> (SIMD_IN * IW)) | (TW'(p_inside ? rdata : '0) << (NSH * IW));
            gm_next = ((K + SIMD_IN)'(gm) >> SIMD_IN) | ((K + SIMD_IN)'({SIMD_IN{p_inside}}) << NSH);
        end
    end

    always_ff @(posedge clk) begin
        if (p_valid) begin
            gv <= gv_next[K*IW-1:0];
            gm <= gm_next[K-1:0];
        end
    end

    always_ff @(posedge clk) begin
        if (rst) begin
            g_full <= 1'b0; g_end <= 1'b0;
            e_valid <= 1'b0; e_end <= 1'b0; e_beat <= '0;
        end else begin
            if (xfer) begin
                g_full <= 1'b0;
            end else if (p_valid && p_last) begin
                g_full <= 1'b1;
                g_end <= p_end;
            end
            if (xfer) begin
                ev <= (EW * IW)'(gv);
                em <= EW'(gm);
                e_valid <= 1'b1;
                e_end <= g_end;
                e_beat <= '0;
            end else if (e_take) begin
                if (32'(e_beat) == CH - 1) begin
                    e_valid <= 1'b0;
                end else begin
                    ev <= ev >> (SIMD * IW);
                    em <= em >> SIMD;
                    e_beat <= e_beat + 1'b1;
                end
            end
        end
    end

    assign out_valid = e_valid;
    assign out_data  = ev[SIMD*IW-1:0];
    assign out_mask  = em[SIMD-1:0];
    assign out_last  = (32'(e_beat) == CH - 1);
    assign out_end   = e_end;
endmodule
