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
//   'T' layer addr[2] q15[2]              -> 'k': f_meta table entry
//   'H' layer addr[4] word[HWB]           -> 'k': hidden weight word (SIMD lanes of HB bits, HWB bytes)
//   'D' layer neuron[2] delta[2]          -> 'k': delta of one neuron for the next update
//   'U'                                   -> 'k' when every layer's update pass is done
//   'C' layer                             -> n_changed[4] n_flipped[4] of that layer's last pass
//   anything else                         -> '?'
// A learning step is: 'I' (forward, its inputs are recorded by the update units), 'D' per neuron, 'U'.
// The hidden weights are not in the bitstream: the host loads them with 'H' once after configuration.
//
// Reset: a power-on reset (FPGA flip-flops start at 0) and the active-low button `rst_n`, synchronised.
module mbnn_uart_top #(
    parameter int SIMD = 8,
    parameter int PE = 1,
    parameter int LEARN = 0,
    parameter int HB = 8,              // hidden weight bits (LEARN = 1)
    parameter int TK = 4,              // f_meta table bits (LEARN = 1)
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
    logic                lr_we, tbl_we, d_we, h_we, upd_start;
    /* verilator lint_on UNUSEDSIGNAL */
    logic [63:0]         out_score;
    logic                upd_busy;
    logic [31:0]         n_changed, n_flipped;

    if (LEARN != 0) begin : g_learn
        /* verilator lint_off UNUSEDSIGNAL */  // the hidden read-back is for co-simulation, not the UART
        logic [SIMD*HB-1:0] h_rdata;
        logic               h_rvalid;
        /* verilator lint_on UNUSEDSIGNAL */
        mbnn_update_top #(.SIMD(SIMD), .PE(PE), .HB(HB), .TK(TK)) u_engine (
            .clk, .rst, .in_valid, .in_ready, .in_data, .in_bank, .in_adapt, .out_valid, .out_ready,
            .out_class, .out_score, .busy,
            .mem_we, .mem_layer(arg[3:0]), .mem_sel(arg[10:8]), .mem_addr(arg[47:16]),
            .mem_wdata(arg[79:48]), .mem_wmask(arg[111:80]),
            .upd_sel(arg[3:0]), .lr_we, .lr_data(arg[12:8]), .tbl_we, .tbl_addr(arg[19:8]),
            .tbl_data(arg[39:24]), .d_we, .d_addr(arg[23:8]), .d_data(arg[39:24]),
            .h_we, .h_re(1'b0), .h_addr(arg[39:8]), .h_wdata(arg[40 +: SIMD*HB]), .h_rdata, .h_rvalid,
            .upd_start, .upd_busy, .n_changed, .n_flipped);
    end else begin : g_infer
        mbnn_top #(.SIMD(SIMD), .PE(PE)) u_engine (
            .clk, .rst, .in_valid, .in_ready, .in_data, .in_bank, .in_adapt, .out_valid, .out_ready,
            .out_class, .out_score, .busy,
            .mem_we, .mem_layer(arg[3:0]), .mem_sel(arg[10:8]), .mem_addr(arg[47:16]),
            .mem_wdata(arg[79:48]), .mem_wmask(arg[111:80]));
        assign upd_busy = 1'b0;
        assign n_changed = '0;
        assign n_flipped = '0;
    end
    assign led_busy = (busy || upd_busy) ^ (LED_LOW != 0);

    // ---- the command machine ----
    typedef enum logic [2:0] {S_CMD, S_ARGS, S_PIXELS, S_RESULT, S_UPDATE, S_COUNT, S_REPLY} state_t;
    state_t      st;
    logic [7:0]  cmd;
    logic [7:0]  nargs, argi;       // argument bytes expected / received
    logic [31:0] npx;               // pixels received of the current image
    logic [$clog2(SIMD+1)-1:0] lane;
    logic [63:0] last_score;
    logic [63:0] reply;             // bytes to send, byte 0 first
    logic [3:0]  nreply;
    logic        upd_seen;          // the update pass has started (upd_busy seen high)

    // (assignments to the function's name, not `return`: Yosys' Verilog front end takes only those)
    function automatic logic [7:0] args_of(logic [7:0] c);
        case (c)
            "I": args_of = 8'd2;
            "W": args_of = 8'd14;
            "R": args_of = 8'd2;
            "T", "D": args_of = 8'd5;
            "H": args_of = 8'(5 + HWB);
            "C": args_of = 8'd1;
            default: args_of = 8'd0;
        endcase
    endfunction

    function automatic logic known(logic [7:0] c);
        known = c == "I" || c == "S" || c == "W"
            || (LEARN != 0 && (c == "R" || c == "T" || c == "H" || c == "D" || c == "U" || c == "C"));
    endfunction

    assign out_ready = (st == S_RESULT);
    assign in_bank = arg[7:0];
    assign in_adapt = arg[8];

    always_ff @(posedge clk) begin
        tx_start <= 1'b0;
        {mem_we, lr_we, tbl_we, d_we, h_we, upd_start} <= '0;
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
                        reply <= 64'("?");
                        nreply <= 4'd1;
                        st <= S_REPLY;
                    end else if (args_of(rx_data) != 0) begin
                        st <= S_ARGS;
                    end else if (rx_data == "S") begin
                        reply <= last_score;
                        nreply <= 4'd8;
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
                        reply <= 64'("k");
                        nreply <= 4'd1;
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
                            "C": st <= S_COUNT;  // the layer byte selects the counters from the next cycle
                            default: ;
                        endcase
                    end
                end
                S_PIXELS: begin
                    // SIMD pixels make one beat; the engine takes it long before the next byte arrives
                    // (a byte is 10 bit times), so a beat is never overwritten while pending
                    if (rx_valid) begin
                        in_data[8*lane +: 8] <= rx_data;
                        npx <= npx + 1;
                        if (32'(lane) == SIMD - 1 || npx + 1 == K0) begin
                            in_valid <= 1'b1;
                            lane <= '0;
                        end else begin
                            lane <= lane + 1'b1;
                        end
                        if (npx + 1 == K0) st <= S_RESULT;
                    end
                end
                S_RESULT: if (out_valid) begin
                    last_score <= out_score;
                    reply <= 64'(out_class[7:0]);
                    nreply <= 4'd1;
                    st <= S_REPLY;
                end
                S_UPDATE: begin
                    if (upd_busy) upd_seen <= 1'b1;
                    if (upd_seen && !upd_busy) begin
                        reply <= 64'("k");
                        nreply <= 4'd1;
                        st <= S_REPLY;
                    end
                end
                S_COUNT: begin
                    reply <= {n_flipped, n_changed};
                    nreply <= 4'd8;
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
