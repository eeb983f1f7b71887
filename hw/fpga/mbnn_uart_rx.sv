// UART receiver, 8N1, LSB first: one `valid` pulse per byte, `data` held until the next byte.
// The line is synchronised with two flip-flops (it comes from another clock domain: the board's USB-UART
// chip); each bit is sampled in its middle, CLKS_PER_BIT cycles apart, counted from the start bit's edge.
// A start bit that is not low in its middle is a glitch and ignored; a missing stop bit drops the byte.
module mbnn_uart_rx #(
    parameter int CLKS_PER_BIT = 217   // clock / baud rate, e.g. 25 MHz / 115200
) (
    input  logic       clk,
    input  logic       rst,
    input  logic       rx,
    output logic       valid,
    output logic [7:0] data
);
    localparam int CW = $clog2(CLKS_PER_BIT + 1);
    logic [1:0]    sync;
    logic [CW-1:0] cnt;
    logic [3:0]    bitn;   // 0: start bit, 1..8: data, 9: stop
    logic          busy;
    logic [7:0]    sh;

    always_ff @(posedge clk) begin
        valid <= 1'b0;
        if (rst) begin
            sync <= 2'b11;
            busy <= 1'b0;
            cnt  <= '0;
            bitn <= '0;
        end else begin
            sync <= {sync[0], rx};
            if (!busy) begin
                if (!sync[1]) begin  // start bit edge: its middle is half a bit later
                    busy <= 1'b1;
                    cnt  <= CW'(CLKS_PER_BIT / 2);
                    bitn <= '0;
                end
            end else if (cnt != 0) begin
                cnt <= cnt - 1'b1;
            end else begin
                cnt <= CW'(CLKS_PER_BIT - 1);
                if (bitn == 0) begin
                    if (sync[1]) busy <= 1'b0;  // glitch, not a start bit
                end else if (bitn <= 8) begin
                    sh <= {sync[1], sh[7:1]};
                end else begin
                    busy <= 1'b0;
                    if (sync[1]) begin  // stop bit present: the byte is good
                        valid <= 1'b1;
                        data  <= sh;
                    end
                end
                bitn <= bitn + 1'b1;
            end
        end
    end
endmodule
