// One synapse of the on-chip metaplastic update: docs/FORMAT.md 4.3 step 5, bit for bit.
//
//   grad = delta * x                      x = pixel 0..255 (PIXELS) or +-1 (bit 1 = +1)
//   u    = sat(-rsr(grad, lr_shift), -65535, 65535)
//   toward zero (h > 0, u < 0 or h < 0, u > 0):  |u| = (|u| * F[idx(h)] + 16384) >> 15
//   else, with the away table (AWAY = 1):         |u| = (|u| * G[idx(h)] + 16384) >> 15
//   h'   = sat(h + u, -2^(HB-1), 2^(HB-1) - 1)
//
// Everything is done on magnitudes plus a direction bit, which is how rsr is defined
// (symmetric around zero) and keeps the table multiply unsigned 16 x 16 bits.
// Two pipeline registers (A: |u|, direction, F; B: h'), both advanced by `en`. PIPE = 1 adds three more for
// the clock (P1: |grad| after the gradient multiply, with h, F and the draws; P2: the product |u| * F
// after register A; P3: |u| after the toward-zero select, with h and the direction): the same logic cut
// into five stages, latency 5 instead of 2. The formal proof
// (hw/formal) is of PIPE = 0; PIPE = 1 is checked against metabnn.sim in simulation (hw/tb/mbnn_update_lane).
// Reset: none needed; the unit's valid bits say which stage holds a synapse.
//
// SR = 1: the two roundings are stochastic (FORMAT.md 4.4) with the synapse's draw (r0, r1), given with
// h, x and delta:  |u| = (|grad| + (r0 & (2^s - 1))) >> s,  toward zero |u| = (|u| F + (r1 & 0x7FFF)) >> 15.
// Nearest rounding is the same datapath with r0 = 2^(s-1) (0 for s = 0) and r1 = 16384, which is how the
// update unit runs a layer whose rounding is 0 on SR hardware. Cost: a 33-bit add instead of a bit select
// and an increment, 15 flip-flops for r1 in register A. SR = 0 (default): the nearest-only lane, r0/r1
// unused (the formal proof, hw/formal, is of this one).
//
// AWAY = 1: the layer's away table G (FORMAT.md 4.2.1; 4.3 step 5, 4.4): a push away from zero, or from h = 0, is
// scaled like one toward zero, |u| = (|u| G[idx(h)] + c) >> 15 with the same rounding term c (16384, or SR's
// r1 & 0x7FFF). One multiplier for both tables: the entry is chosen in stage A (F toward zero, G away) from h and
// the sign of grad, which is known before |u| is (u = -sgn(grad) q), so register A's f holds G[idx(h)] where the
// push is away, and stage B scales every push. Cost: a 16-bit two-way mux before register A (P1 with PIPE) and
// the G table's port. AWAY = 0 (default): the lane without G, away_flat unused.
module mbnn_update_lane #(
    parameter int HB = 8,      // hidden weight bits b (2..16)
    parameter int TK = 4,      // f_meta table bits k (0..min(HB-1, 12))
    parameter int PIXELS = 0,  // 1: x is an 8-bit pixel; 0: x is one bit (+-1)
    parameter int SR = 0,      // 1: stochastic rounding from r0/r1; 0: to nearest, r0/r1 ignored
    parameter int PIPE = 0,    // 1: registers P1, P2 and P3 as well (latency 5)
    parameter int AWAY = 0,    // 1: pushes away from zero scaled by G (away_flat); 0: passed unchanged
    parameter int XB = (PIXELS != 0) ? 8 : 1  // derived, do not override
) (
    input  logic                     clk,
    input  logic                     en,
    input  logic [4:0]               lr_shift,
    input  logic [(16 << TK) - 1:0]  table_flat,  // F[i] at bits [16 i +: 16], Q15
    /* verilator lint_off UNUSEDSIGNAL */  // AWAY = 0 reads no G
    input  logic [(16 << TK) - 1:0]  away_flat,   // G[i] at bits [16 i +: 16], Q15 (AWAY = 1)
    /* verilator lint_on UNUSEDSIGNAL */
    input  logic signed [HB-1:0]     h,
    input  logic [XB-1:0]            x,
    input  logic signed [15:0]       delta,
    /* verilator lint_off UNUSEDSIGNAL */  // SR = 0 reads neither; SR = 1 bits 30:0 of r0, 14:0 of r1
    input  logic [31:0]              r0,          // the synapse's draw (SR = 1), with h, x and delta
    input  logic [31:0]              r1,
    /* verilator lint_on UNUSEDSIGNAL */
    output logic signed [HB-1:0]     h_new,       // 2 (PIPE: 5) enabled cycles after h, x, delta
    output logic                     changed,     // h_new != h
    output logic                     flipped      // sign bit (h >= 0) changed
`ifdef FORMAL
    // stage A, for the lemmas of hw/formal/formal_update_lane.sv (Yosys has no hierarchical references);
    // only `read_verilog -formal` defines FORMAL: no simulation or synthesis build has these ports
    , output logic signed [HB-1:0]   fv_h_a,
    output logic [15:0]              fv_umag_a,
    output logic [15:0]              fv_f_a,
    output logic                     fv_uneg_a,
    output logic                     fv_toward_a
`endif
);
    localparam int TSHIFT = HB - 1 - TK;
    localparam int TMAX = (1 << TK) - 1;
    localparam logic signed [HB+17:0] HMAX = (HB + 18)'((1 << (HB - 1)) - 1);
    // -HMAX - 1, not -(HB + 18)'(1 << (HB - 1)): Yosys (0.23 to 0.70) reads that cast as +2^(HB-1), so the
    // synthesized lane saturated every sum below it (found by the formal check, hw/formal)
    localparam logic signed [HB+17:0] HMIN = -HMAX - 1;

    // ---- stage A (combinational from the inputs; with PIPE, cut at P1 after |grad|) ----
    // |delta| fits 16 unsigned bits even for -32768.
    logic [15:0] dmag;
    assign dmag = delta[15] ? 16'(-delta) : 16'(delta);
    logic dpos, dneg;
    assign dpos = !delta[15] && (delta != 16'sd0);
    assign dneg = delta[15];

    // |grad| and the sign of grad (gpos: grad > 0, gneg: grad < 0)
    logic [23:0] gmag0;
    logic        gpos0, gneg0;
    if (PIXELS != 0) begin : g_pix
        assign gmag0 = 24'(dmag) * 24'(x);
        assign gpos0 = dpos && (x != '0);
        assign gneg0 = dneg && (x != '0);
    end else begin : g_bit
        assign gmag0 = 24'(dmag);
        assign gpos0 = x[0] ? dpos : dneg;
        assign gneg0 = x[0] ? dneg : dpos;
    end

    // table index min(|h| >> tshift, 2^k - 1); |h| = 2^(HB-1) fits HB unsigned bits
    logic [HB-1:0] habs;
    assign habs = h[HB-1] ? HB'(-h) : HB'(h);
    logic [HB-1:0] hq;
    assign hq = habs >> TSHIFT;
    logic [11:0] idx;
    assign idx = (hq > HB'(TMAX)) ? 12'(TMAX) : 12'(hq);
    logic [15:0] f0;  // the entry stage B scales |u| by
    if (AWAY != 0) begin : g_away
        // toward zero as stage A's `toward` below says it (u < 0 exactly when grad > 0), from the inputs
        logic toward0;
        assign toward0 = (!h[HB-1] && h != '0 && gpos0) || (h[HB-1] && gneg0);
        assign f0 = toward0 ? table_flat[16 * idx +: 16] : away_flat[16 * idx +: 16];
    end else begin : g_away_none
        assign f0 = table_flat[16 * idx +: 16];
    end

    // the values stage A goes on with: the inputs themselves, or register P1 (PIPE = 1)
    logic [23:0]          gmag;
    logic                 gpos, gneg;
    logic signed [HB-1:0] hp;
    logic [15:0]          f;
    logic [4:0]           lr;   // lr_shift, carried with its synapse (the unit holds it constant in a pass)
    /* verilator lint_off UNUSEDSIGNAL */  // SR = 0 reads neither; SR = 1 bits 30:0 of r0, 14:0 of r1
    logic [31:0]          r0p, r1p;
    logic [31:0]          r0m;  // r0 & (2^s - 1), the noise of |u|'s rounding: masked before register P1, so
                                // stage A has only the add and the shift (the mask was on the 25F learning
                                // build's slowest path, docs/FPGA.md)
    /* verilator lint_on UNUSEDSIGNAL */
    assign r0m = r0 & ((32'd1 << lr_shift) - 32'd1);
    if (PIPE != 0) begin : g_p1
        always_ff @(posedge clk) begin
            if (en) begin
                gmag <= gmag0;
                gpos <= gpos0;
                gneg <= gneg0;
                hp   <= h;
                f    <= f0;
                lr   <= lr_shift;
                r0p  <= (SR != 0) ? r0m : '0;
                r1p  <= (SR != 0) ? r1 : '0;
            end
        end
    end else begin : g_p1_none
        assign gmag = gmag0;
        assign gpos = gpos0;
        assign gneg = gneg0;
        assign hp   = h;
        assign f    = f0;
        assign lr   = lr_shift;
        assign r0p  = r0m;
        assign r1p  = r1;
    end

    logic [24:0] rmag;  // |grad| >> lr_shift, rounded
    if (SR == 0) begin : g_nearest
        // rsr on the magnitude: (m + 2^(s-1)) >> s == (m >> s) + bit s-1 of m.
        logic [31:0] g32;
        logic        rbit;
        assign g32 = {8'd0, gmag};
        assign rbit = (lr != 5'd0) && g32[lr - 5'd1];
        assign rmag = 25'(gmag >> lr) + 25'(rbit);
    end else begin : g_stochastic
        // (|grad| + (r0 & (2^s - 1))) >> s: |grad| < 2^23 and the noise < 2^31, so 33 bits hold the sum, and
        // the quotient is at most |grad| (s = 0, no noise) or |grad| / 2 + 1: 25 bits
        logic [30:0] noise;
        logic [32:0] radd;
        assign noise = r0p[30:0];  // already r0 & (2^s - 1): r0m
        assign radd = 33'(gmag) + 33'(noise);
        assign rmag = 25'(radd >> lr);
    end

    logic [15:0] umag;  // |u| after the +-65535 saturation
    assign umag = (rmag > 25'd65535) ? 16'hFFFF : rmag[15:0];
    // u = -sgn(grad) * rmag: u < 0 when grad > 0
    logic uneg, upos;
    assign uneg = gpos;
    assign upos = gneg;

    logic hpos, hneg;
    assign hneg = hp[HB-1];
    assign hpos = !hp[HB-1] && (hp != '0);
    logic toward;
    assign toward = (hpos && uneg) || (hneg && upos);

    // ---- register A ----
    logic signed [HB-1:0] h_a;
    logic [15:0]          umag_a, f_a;
    logic                 uneg_a, toward_a;
    always_ff @(posedge clk) begin
        if (en) begin
            h_a      <= hp;
            umag_a   <= umag;
            f_a      <= f;
            uneg_a   <= uneg;
            toward_a <= toward;
        end
    end

`ifdef FORMAL
    assign fv_h_a = h_a;
    assign fv_umag_a = umag_a;
    assign fv_f_a = f_a;
    assign fv_uneg_a = uneg_a;
    assign fv_toward_a = toward_a;
`endif

    // ---- stage B: metaplastic scaling, add, saturate (with PIPE, cut at P2 after the product, P3 after the
    //      select) ----
    logic [31:0] prod0;  // |u| * F < 2^31 since |u| <= 65535, F <= 32768
    assign prod0 = 32'(umag_a) * 32'(f_a);
    logic [14:0] r1_v;   // the product's rounding term: 16384, or (SR) r1 & 0x7FFF from register A
    if (SR != 0) begin : g_r1
        // r1 & 0x7FFF travels in register A with its synapse (hw/formal reads g_r1.r1_a by that name)
        logic [14:0] r1_a;
        always_ff @(posedge clk) begin
            if (en) r1_a <= r1p[14:0];
        end
        assign r1_v = r1_a;
    end else begin : g_r1_none
        assign r1_v = 15'd16384;
    end
    logic [31:0]          prod;
    logic signed [HB-1:0] h_b;
    /* verilator lint_off UNUSEDSIGNAL */  // AWAY = 1 scales every push: |u| unscaled and `toward` unread here
    logic [15:0]          umag_b;
    logic                 uneg_b, toward_b;
    /* verilator lint_on UNUSEDSIGNAL */
    logic [14:0]          r1_b;
    if (PIPE != 0) begin : g_p2
        always_ff @(posedge clk) begin
            if (en) begin
                prod     <= prod0;
                h_b      <= h_a;
                umag_b   <= umag_a;
                uneg_b   <= uneg_a;
                toward_b <= toward_a;
                r1_b     <= r1_v;
            end
        end
    end else begin : g_p2_none
        assign prod     = prod0;
        assign h_b      = h_a;
        assign umag_b   = umag_a;
        assign uneg_b   = uneg_a;
        assign toward_b = toward_a;
        assign r1_b     = r1_v;
    end
    logic [16:0] scaled;
    // SR = 0: (prod + 16384) >> 15 (r1_b is that constant); prod + 2^15 - 1 < 2^32 still
    assign scaled = 17'((prod + 32'(r1_b)) >> 15);
    logic [16:0] mag0;
    if (AWAY != 0) begin : g_scale_all
        assign mag0 = scaled;  // every push is scaled: by F toward zero, by G (in f_a) away from it
    end else begin : g_scale_toward
        assign mag0 = toward_b ? scaled : 17'(umag_b);
    end
    // with PIPE, cut at P3 after the select: |u| final, with h and the direction
    logic [16:0]          mag;
    logic signed [HB-1:0] h_c;
    logic                 uneg_c;
    if (PIPE != 0) begin : g_p3
        always_ff @(posedge clk) if (en) {mag, h_c, uneg_c} <= {mag0, h_b, uneg_b};
    end else begin : g_p3_none
        assign {mag, h_c, uneg_c} = {mag0, h_b, uneg_b};
    end
    logic signed [HB+17:0] hx, ux, sum;
    assign hx  = (HB + 18)'(h_c);  // sign-extended (the cast keeps h_c's signedness)
    assign ux  = $signed((HB + 18)'(mag));
    assign sum = hx + (uneg_c ? -ux : ux);
    logic signed [HB-1:0] hsat;
    assign hsat = (sum > HMAX) ? HMAX[HB-1:0] : (sum < HMIN) ? HMIN[HB-1:0] : sum[HB-1:0];

    // ---- register B ----
    always_ff @(posedge clk) begin
        if (en) begin
            h_new   <= hsat;
            changed <= hsat != h_c;
            flipped <= hsat[HB-1] != h_c[HB-1];
        end
    end
endmodule
