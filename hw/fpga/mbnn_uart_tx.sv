// UART transmitter, 8N1, LSB first. `start` with `data` while `busy` is low sends one byte; `busy` stays
// high until the stop bit has been on the line for a whole bit time. The line idles high.
module mbnn_uart_tx #(
    parameter int CLKS_PER_BIT = 217
) (
    input  logic       clk,
    input  logic       rst,
    input  logic       start,
    input  logic [7:0] data,
    output logic       busy,
    output logic       tx
);
    localparam int CW = $clog2(CLKS_PER_BIT + 1);
    logic [CW-1:0] cnt;
    logic [3:0]    bitn;
    logic [9:0]    frame;  // stop, data[7:0], start: shifted out from bit 0

    always_ff @(posedge clk) begin
        if (rst) begin
            busy <= 1'b0;
            tx   <= 1'b1;
        end else if (!busy) begin
            if (start) begin
                busy  <= 1'b1;
                frame <= {1'b1, data, 1'b0};
                bitn  <= '0;
                cnt   <= '0;
            end
        end else if (cnt != 0) begin
            cnt <= cnt - 1'b1;
        end else if (bitn == 10) begin
            busy <= 1'b0;
        end else begin
            tx    <= frame[0];
            frame <= {1'b1, frame[9:1]};
            bitn  <= bitn + 1'b1;
            cnt   <= CW'(CLKS_PER_BIT - 1);
        end
    end
endmodule
