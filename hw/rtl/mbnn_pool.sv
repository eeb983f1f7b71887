// 2 x 2 max-pool, stride 2, on sign bits (docs/FORMAT.md 3.3): output (c, y, x) is the OR of the four bits at
// (2y + dy, 2x + dx), bit 1 = +1 (the max of +-1 values is +1 iff one of them is), placed after the threshold
// (FINN's order). An odd last row or column is dropped (torch's floor mode): H/2 x W/2 outputs.
//
// Streams: the map in raster order (y, then x), each position's C channels in CB = ceil(C / SIMD) beats of SIMD
// bits (channel c at bit c mod SIMD of beat c / SIMD, padding bits 0): what mbnn_layer's SIGN output sends per
// output position, and what mbnn_swg reads; the pooled map leaves in the same format. `out_last` marks a position's
// last beat, `out_end` every beat of the image's last position.
//
// One partial row of W/2 x CB words (registers): on an even input row the pair (2x, 2x + 1) is ORed into word x,
// on the odd row below the third input is ORed in and the fourth one completes the window: that beat is sent
// (out_data, a registered output, so no path runs from in_valid to out_valid). One input beat per cycle; the input
// stalls only when a finished window meets a full output register. Reset: synchronous, active high.
module mbnn_pool #(
    parameter int C = 32,     // channels
    parameter int H = 28,     // input rows
    parameter int W = 28,     // input columns
    parameter int SIMD = 32   // bits per beat
) (
    input  logic            clk,
    input  logic            rst,
    input  logic            in_valid,
    output logic            in_ready,
    input  logic [SIMD-1:0] in_data,
    output logic            out_valid,
    input  logic            out_ready,
    output logic [SIMD-1:0] out_data,
    output logic            out_last,
    output logic            out_end
);
    localparam int CB  = (C + SIMD - 1) / SIMD;  // beats per position
    localparam int PW  = W / 2;
    localparam int PH  = H / 2;
    localparam int BW  = $clog2(CB + 1);
    localparam int XW  = $clog2(W + 1);
    localparam int YW  = $clog2(H + 1);
    localparam int AW  = (PW * CB > 1) ? $clog2(PW * CB) : 1;

    if (C < 1 || SIMD < 1 || H < 2 || W < 2) begin : g_bad_params
        $error("mbnn_pool: need C, SIMD >= 1 and H, W >= 2 (a pooled map of at least one position)");
    end

    logic [SIMD-1:0] rowbuf [0:PW*CB-1];
    logic [BW-1:0]   b;
    logic [XW-1:0]   x;
    logic [YW-1:0]   y;
    logic            take, kept, emit, odd_row, odd_col;
    logic [AW-1:0]   addr;
    logic [SIMD-1:0] merged;

    assign kept    = (32'(x) < 2 * PW) && (32'(y) < 2 * PH);  // not in a dropped last row or column
    assign odd_row = y[0];
    assign odd_col = x[0];
    assign emit    = kept && odd_row && odd_col;
    assign in_ready = !emit || !out_valid || out_ready;
    assign take    = in_valid && in_ready;
    assign addr    = AW'(32'(x >> 1) * CB + 32'(b));
    // the first input of a window starts the word; the others OR into it
    assign merged  = (!odd_row && !odd_col) ? in_data : (rowbuf[addr] | in_data);

    always_ff @(posedge clk) begin
        if (take && kept && !emit) rowbuf[addr] <= merged;
    end

    always_ff @(posedge clk) begin
        if (rst) begin
            b <= '0; x <= '0; y <= '0;
            out_valid <= 1'b0; out_last <= 1'b0; out_end <= 1'b0;
        end else begin
            if (out_valid && out_ready) out_valid <= 1'b0;
            if (take) begin
                if (emit) begin
                    out_valid <= 1'b1;
                    out_data  <= merged;
                    out_last  <= (32'(b) == CB - 1);
                    out_end   <= (32'(x >> 1) == PW - 1) && (32'(y >> 1) == PH - 1);
                end
                if (32'(b) != CB - 1) begin
                    b <= b + 1'b1;
                end else begin
                    b <= '0;
                    if (32'(x) != W - 1) begin
                        x <= x + 1'b1;
                    end else begin
                        x <= '0;
                        y <= (32'(y) == H - 1) ? '0 : y + 1'b1;
                    end
                end
            end
        end
    end
endmodule
