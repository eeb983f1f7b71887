// A board's top level: clock, reset button, and one UART (8N1) around the engine, so a bitstream from
// `metabnn fpga` is something a board runs. LEARN = 0 wraps hw/rtl/mbnn_top.sv (inference), LEARN = 1
// wraps hw/rtl/mbnn_update_top.sv (the engines plus the metaplastic update units, learning on chip).
//
// The host speaks request/response: one command byte, its argument bytes (multi-byte fields little-endian),
// then it waits for the reply before sending the next command (the wrapper has no receive FIFO).
//
//   'I' bank adapt px[0..K0-1]            -> class (1 byte): one image through the engine
//   'S'                                   -> the last image's winning score (8 bytes, int64)
//   'W' layer sel addr[4] data[4] mask[4] -> 'k': engine memory write (docs/HARDWARE.md mem_* port: load a
//                                            new model of the same shape without a new bitstream)
//   LEARN = 1 only (docs/HARDWARE_UPDATE.md; the host or firmware computes the deltas, FORMAT.md 4.3):
//   'R' layer lr                          -> 'k': lr_shift of a layer
//   'T' layer addr[2] q15[2]              -> 'k': f_meta table entry; addr bit 12 set: the entry addr - 4096
//                                            of the layer's away table G (FORMAT.md 4.2.1, a layer whose AWAY
//                                            bit is set; a unit built without G ignores it)
//   'H' layer addr[4] word[HWB]           -> 'k': hidden weight word (SIMD lanes of HB bits, HWB bytes)
//   'D' layer neuron[2] delta[2]          -> 'k': delta of one neuron for the next update
//   'U'                                   -> 'k' when every layer's update pass is done
//   'C' layer                             -> n_changed[4] n_flipped[4] of that layer's last pass
//   'G' layer rounding seed[4] step[4]    -> 'k': the layer's stochastic rounding state (FORMAT.md 4.4:
//                                            rounding bit, sr_seed, sr_step; kept only where SR has the bit)
//   'Q' layer                             -> sr_step[4]: the layer's step counter now (saved state: every
//                                            pass of a stochastically rounding layer counts one)
//   'Y' layer addr[4]                     -> hidden weight word (HWB bytes): read back what 'H' wrote or a
//                                            pass left, so a host can save the learned state
//   anything else                         -> '?'
// A learning step is: 'I' (forward, its inputs are recorded by the update units), 'D' per neuron, 'U'.
// The hidden weights are not in the bitstream: the host loads them with 'H' once after configuration, the
// tables F (and G where the model has one) with 'T', and a model that rounds stochastically its layers' 'G'
// state from the file (sr_seed, sr_step of FORMAT.md 6).
//
// Reset: a power-on reset (FPGA flip-flops start at 0) and the active-low button `rst_n`, synchronised.
module mbnn_uart_top #(
    parameter int SIMD = 8,
    parameter int PE = 1,
    parameter int LEARN = 0,
    parameter int HB = 8,              // hidden weight bits (LEARN = 1)
    parameter int TK = 4,              // f_meta table bits (LEARN = 1)
    parameter int SR = 0,              // LEARN = 1: bit l gives layer l's update unit the Threefry generators
    // LEARN = 1: bit l gives layer l's update unit the away table G (FORMAT.md 4.2.1; metabnn fpga sets the bits
    // of the model's layers that have one, metabnn.backends.rtl.away_mask), loaded by 'T' with index bit 12
    parameter int AWAY = 0,
    // LEARN = 1, SR != 0: Threefry rounds per pipeline stage. 2 (latency 10), not the units' default 4: a
    // stage of 4 rounds (+ the counter's key add) was the learning build's slowest path (docs/FPGA.md)
    parameter int TF_STAGE = 2,
    // LEARN = 1: the update units' lanes built (of SIMD) and their pipelined lanes. A board fed over the UART
    // waits far longer for the deltas ('D', 6 bytes a neuron) than a unit of one lane takes for the pass, so
    // one lane (its two multipliers) per layer, cut into four stages for the clock (docs/HARDWARE_UPDATE.md;
    // metabnn.fpga.report.UART_UPDATE says the same to the report's cycle count)
    parameter int ULANES = 1,
    parameter int UPIPE = 1,
    // LEARN = 1: the hidden memory's read registered twice in the update units (mbnn_update.sv HREG): the block
    // RAM's clock-to-out and the multiplexer over a deep memory's blocks were the slowest path (docs/FPGA.md)
    parameter int HREG = 1,
    parameter int CLK_HZ = 25_000_000, // the board's clock
    parameter int BAUD = 115_200,
    parameter int LED_LOW = 0          // 1: the board's LED is lit by a low pin (iCEBreaker)
) (
    input  logic clk,
    input  logic rst_n,
    input  logic uart_rx,
    output logic uart_tx,
    output logic led_busy              // high while an image or an update is in the engine
);
    /* verilator lint_off UNUSEDPARAM */  // only MBNN_K (the pixels of an image) is needed here
    `include "mbnn_model.svh"
    /* verilator lint_on UNUSEDPARAM */

    localparam int CPB = CLK_HZ / BAUD;
    localparam int K0 = MBNN_K[31:0];
    localparam int HWB = (SIMD * HB + 7) / 8;   // bytes of a hidden weight word
    localparam int AB = 14 > 5 + HWB ? 14 : 5 + HWB;  // the longest argument list ('W' or 'H')
    localparam int RB = HWB > 8 ? HWB : 8;            // the longest reply ('S', 'C' or 'Y')

    // ---- reset: power-on (count up from the configured 0) or the button, two-flop synchronised ----
    logic [1:0] btn;
    /* verilator lint_off PROCASSINIT */  // the configured value of the flip-flops is the power-on state
    logic [3:0] por = 4'd0;
    /* verilator lint_on PROCASSINIT */
    logic       rst;
    always_ff @(posedge clk) begin
        btn <= {btn[0], rst_n};
        if (por != 4'hf) por <= por + 1'b1;
        rst <= (por != 4'hf) || !btn[1];
    end

    // ---- UART ----
    logic       rx_valid, tx_start, tx_busy;
    logic [7:0] rx_data, tx_data;
    mbnn_uart_rx #(.CLKS_PER_BIT(CPB)) u_rx (.clk, .rst, .rx(uart_rx), .valid(rx_valid), .data(rx_data));
    mbnn_uart_tx #(.CLKS_PER_BIT(CPB)) u_tx (.clk, .rst, .start(tx_start), .data(tx_data), .busy(tx_busy),
                                             .tx(uart_tx));

    // ---- the engine's ports ----
    logic                in_valid, in_ready, in_adapt, out_valid, out_ready, busy, mem_we;
    logic [8*SIMD-1:0]   in_data;
    logic [7:0]          in_bank;
    // Unused by design: the class above the reply's one byte, argument bits a command ignores, and with
    // LEARN = 0 the learning strobes.
    /* verilator lint_off UNUSEDSIGNAL */
    logic [15:0]         out_class;
    logic [8*AB-1:0]     arg;        // argument bytes, byte i at [8i +: 8]
    logic                lr_we, tbl_we, d_we, h_we, h_re, sr_we, upd_start;
    /* verilator lint_on UNUSEDSIGNAL */
    logic [63:0]         out_score;
    logic                upd_busy;
    logic [31:0]         n_changed, n_flipped, sr_step_q;
    logic [8*RB-1:0]     h_word;     // the hidden word 'Y' read, zero-extended to the reply
    logic                h_valid;

    if (LEARN != 0) begin : g_learn
        logic [SIMD*HB-1:0] h_rdata;
        mbnn_update_top #(.SIMD(SIMD), .PE(PE), .HB(HB), .TK(TK), .SR(SR), .AWAY(AWAY), .TF_STAGE(TF_STAGE),
                          .ULANES(ULANES), .UPIPE(UPIPE), .HREG(HREG)) u_engine (
            .clk, .rst, .in_valid, .in_ready, .in_data, .in_bank, .in_adapt, .out_valid, .out_ready,
            .out_class, .out_score, .busy,
            .mem_we, .mem_layer(arg[3:0]), .mem_sel(arg[10:8]), .mem_addr(arg[47:16]),
            .mem_wdata(arg[79:48]), .mem_wmask(arg[111:80]),
            .upd_sel(arg[3:0]), .lr_we, .lr_data(arg[12:8]),
            .sr_we, .sr_rnd(arg[8]), .sr_seed(arg[47:16]), .sr_step(arg[79:48]),
            .tbl_we, .tbl_away(arg[20]), .tbl_addr(arg[19:8]), .tbl_data(arg[39:24]), .d_we, .d_addr(arg[23:8]), .d_data(arg[39:24]),
            .h_we, .h_re, .h_addr(arg[39:8]), .h_wdata(arg[40 +: SIMD*HB]), .h_rdata, .h_rvalid(h_valid),
            .upd_start, .upd_busy, .n_changed, .n_flipped, .sr_step_q);
        assign h_word = (8*RB)'(h_rdata);
    end else begin : g_infer
        mbnn_top #(.SIMD(SIMD), .PE(PE)) u_engine (
            .clk, .rst, .in_valid, .in_ready, .in_data, .in_bank, .in_adapt, .out_valid, .out_ready,
            .out_class, .out_score, .busy,
            .mem_we, .mem_layer(arg[3:0]), .mem_sel(arg[10:8]), .mem_addr(arg[47:16]),
            .mem_wdata(arg[79:48]), .mem_wmask(arg[111:80]));
        assign upd_busy = 1'b0;
        assign n_changed = '0;
        assign n_flipped = '0;
        assign sr_step_q = '0;
        assign h_word = '0;
        assign h_valid = 1'b0;
    end
    assign led_busy = (busy || upd_busy) ^ (LED_LOW != 0);

    // ---- the command machine ----
    typedef enum logic [3:0] {S_CMD, S_ARGS, S_PIXELS, S_RESULT, S_UPDATE, S_COUNT, S_STEP, S_HIDDEN,
                              S_REPLY} state_t;
    state_t      st;
    logic [7:0]  cmd;
    logic [7:0]  nargs, argi;       // argument bytes expected / received
    logic [$clog2(K0+1)-1:0] npx;   // pixels received of the current image
    logic [$clog2(SIMD+1)-1:0] lane;
    logic [8*RB-1:0] reply;         // bytes to send, byte 0 first
    logic [7:0]  nreply;
    logic        upd_seen;          // the update pass has started (upd_busy seen high)

    // (assignments to the function's name, not `return`: Yosys' Verilog front end takes only those)
    function automatic logic [7:0] args_of(logic [7:0] c);
        case (c)
            "I": args_of = 8'd2;
            "W": args_of = 8'd14;
            "R": args_of = 8'd2;
            "T", "D": args_of = 8'd5;
            "H": args_of = 8'(5 + HWB);
            "C", "Q": args_of = 8'd1;
            "G": args_of = 8'd10;
            "Y": args_of = 8'd5;
            default: args_of = 8'd0;
        endcase
    endfunction

    function automatic logic known(logic [7:0] c);
        known = c == "I" || c == "S" || c == "W"
            || (LEARN != 0 && (c == "R" || c == "T" || c == "H" || c == "D" || c == "U" || c == "C"
                               || c == "G" || c == "Q" || c == "Y"));
    endfunction

    assign out_ready = (st == S_RESULT);
    assign in_bank = arg[7:0];
    assign in_adapt = arg[8];

    always_ff @(posedge clk) begin
        tx_start <= 1'b0;
        {mem_we, lr_we, tbl_we, d_we, h_we, h_re, sr_we, upd_start} <= '0;
        if (in_valid && in_ready) in_valid <= 1'b0;
        if (rst) begin
            st <= S_CMD;
            in_valid <= 1'b0;
            nreply <= '0;
        end else begin
            case (st)
                S_CMD: if (rx_valid) begin
                    cmd <= rx_data;
                    argi <= '0;
                    nargs <= args_of(rx_data);
                    if (!known(rx_data)) begin
                        reply <= (8*RB)'("?");
                        nreply <= 8'd1;
                        st <= S_REPLY;
                    end else if (args_of(rx_data) != 0) begin
                        st <= S_ARGS;
                    end else if (rx_data == "S") begin
                        // the engine holds the last image's winning score until the next image's
                        // scores (only 'I' sends one), so no copy of it is kept here
                        reply <= (8*RB)'(out_score);
                        nreply <= 8'd8;
                        st <= S_REPLY;
                    end else begin  // 'U'
                        upd_start <= 1'b1;
                        upd_seen <= 1'b0;
                        st <= S_UPDATE;
                    end
                end
                S_ARGS: if (rx_valid) begin
                    arg[8*argi +: 8] <= rx_data;
                    argi <= argi + 1'b1;
                    if (argi + 1'b1 == nargs) begin
                        reply <= (8*RB)'("k");
                        nreply <= 8'd1;
                        st <= S_REPLY;
                        case (cmd)
                            "I": begin
                                st <= S_PIXELS;
                                npx <= '0;
                                lane <= '0;
                            end
                            "W": mem_we <= 1'b1;
                            "R": lr_we <= 1'b1;
                            "T": tbl_we <= 1'b1;
                            "H": h_we <= 1'b1;
                            "D": d_we <= 1'b1;
                            "G": sr_we <= 1'b1;
                            "C": st <= S_COUNT;  // the layer byte selects the counters from the next cycle
                            "Q": st <= S_STEP;
                            "Y": begin       // the read data comes back with h_rvalid (1 + HREG cycles later)
                                h_re <= 1'b1;
                                st <= S_HIDDEN;
                            end
                            default: ;
                        endcase
                    end
                end
                S_PIXELS: begin
                    // SIMD pixels make one beat; the engine takes it long before the next byte arrives
                    // (a byte is 10 bit times), so a beat is never overwritten while pending
                    if (rx_valid) begin
                        in_data[8*lane +: 8] <= rx_data;
                        npx <= npx + 1'b1;
                        if (32'(lane) == SIMD - 1 || 32'(npx) + 1 == K0) begin
                            in_valid <= 1'b1;
                            lane <= '0;
                        end else begin
                            lane <= lane + 1'b1;
                        end
                        if (32'(npx) + 1 == K0) st <= S_RESULT;
                    end
                end
                S_RESULT: if (out_valid) begin
                    reply <= (8*RB)'(out_class[7:0]);
                    nreply <= 8'd1;
                    st <= S_REPLY;
                end
                S_UPDATE: begin
                    if (upd_busy) upd_seen <= 1'b1;
                    if (upd_seen && !upd_busy) begin
                        reply <= (8*RB)'("k");
                        nreply <= 8'd1;
                        st <= S_REPLY;
                    end
                end
                S_COUNT: begin
                    reply <= (8*RB)'({n_flipped, n_changed});
                    nreply <= 8'd8;
                    st <= S_REPLY;
                end
                S_STEP: begin
                    reply <= (8*RB)'(sr_step_q);
                    nreply <= 8'd4;
                    st <= S_REPLY;
                end
                S_HIDDEN: if (h_valid) begin
                    reply <= h_word;
                    nreply <= 8'(HWB);
                    st <= S_REPLY;
                end
                S_REPLY: if (!tx_busy && !tx_start) begin
                    if (nreply == 0) begin
                        st <= S_CMD;
                    end else begin
                        tx_data <= reply[7:0];
                        tx_start <= 1'b1;
                        reply <= reply >> 8;
                        nreply <= nreply - 1'b1;
                    end
                end
                default: st <= S_CMD;
            endcase
        end
    end
endmodule
