// Flatten of a conv map into the input vector of the first dense layer (docs/FORMAT.md 3.3, docs/HARDWARE.md
// "Conv top"): the map arrives position-major, each position's C channels in CB = ceil(C / SIMD) beats of SIMD
// bits (channel c at bit c mod SIMD of beat c / SIMD; bits past C ignored), as mbnn_layer's SIGN output or
// mbnn_pool sends it. The C valid bits of every position are packed back to back into one vector of K = C POS
// bits, element (y W + x) C + c (the stream's order: the exporter permutes that layer's weight columns to it,
// export/readmemh.py), then sent as ceil(K / SIMD) beats of SIMD bits (element i at bit i mod SIMD of beat
// i / SIMD, padding 0), the input stream mbnn_layer takes.
//
// A gather register (K bits, each beat's bits enter at the top and the register moves down by their count, so
// element 0 ends at the bottom) and an output register: the vector moves to the output register on the image's
// last input beat (which waits while the output register still sends the previous vector), so the next
// image is gathered while this one is sent. The first output beat is offered the cycle after the last input
// beat was taken. Reset: synchronous, active high; it drops the image in flight.
module mbnn_conv_flatten #(
    parameter int C = 8,      // channels of the map
    parameter int POS = 4,    // positions of the map (H W)
    parameter int SIMD = 32   // bits per beat, in and out
) (
    input  logic            clk,
    input  logic            rst,
    input  logic            in_valid,
    output logic            in_ready,
    input  logic [SIMD-1:0] in_data,
    output logic            out_valid,
    input  logic            out_ready,
    output logic [SIMD-1:0] out_data,
    output logic            busy
);
    localparam int CB    = (C + SIMD - 1) / SIMD;
    localparam int LASTB = C - (CB - 1) * SIMD;
    localparam int K     = C * POS;
    localparam int CHO   = (K + SIMD - 1) / SIMD;
    localparam int EW    = CHO * SIMD;
    localparam int TW    = K + SIMD;
    localparam int BW    = $clog2(CB + 1);
    localparam int PW    = $clog2(POS + 1);
    localparam int OW    = $clog2(CHO + 1);
    localparam int NSH   = (K > SIMD) ? K - SIMD : 0;   // where a full beat enters (used only when CB > 1)
    localparam logic [SIMD-1:0] LMASK = {SIMD{1'b1}} >> (SIMD - LASTB);  // a position's last beat: its C bits

    if (C < 1 || POS < 1 || SIMD < 1) begin : g_bad_params
        $error("mbnn_conv_flatten: need C, POS, SIMD >= 1");
    end

    logic [K-1:0]   gv;
    logic [BW-1:0]  b;
    logic [PW-1:0]  pos;
    logic [EW-1:0]  ev;
    logic           e_valid;
    logic [OW-1:0]  e_beat;
    logic           lastbeat, completing, take, e_take;
    /* verilator lint_off UNUSEDSIGNAL */  // bits pushed past the top (a last beat's padding) are dropped
    logic [TW-1:0]  gv_next;
    /* verilator lint_on UNUSEDSIGNAL */

    assign lastbeat   = (32'(b) == CB - 1);
    assign completing = lastbeat && (32'(pos) == POS - 1);
    assign in_ready   = !(completing && e_valid);
    assign take       = in_valid && in_ready;
    assign e_take     = e_valid && out_ready;

    always_comb begin
        if (lastbeat)
            gv_next = (TW'(gv) >> LASTB) | (TW'(in_data & LMASK) << (K - LASTB));
        else
            gv_next = (TW'(gv) >> SIMD) | (TW'(in_data) << NSH);
    end

    always_ff @(posedge clk) begin
        if (take) gv <= gv_next[K-1:0];
    end

    always_ff @(posedge clk) begin
        if (rst) begin
            b <= '0; pos <= '0; e_valid <= 1'b0; e_beat <= '0;
        end else begin
            if (take) begin
                if (!lastbeat) b <= b + 1'b1;
                else begin
                    b <= '0;
                    pos <= (32'(pos) == POS - 1) ? '0 : pos + 1'b1;
                end
            end
            if (take && completing) begin
                ev <= EW'(gv_next[K-1:0]);
                e_valid <= 1'b1;
                e_beat <= '0;
            end else if (e_take) begin
                if (32'(e_beat) == CHO - 1) e_valid <= 1'b0;
                else begin
                    ev <= ev >> SIMD;
                    e_beat <= e_beat + 1'b1;
                end
            end
        end
    end

    assign out_valid = e_valid;
    assign out_data  = ev[SIMD-1:0];
    assign busy      = e_valid || (b != '0) || (pos != '0);
endmodule
