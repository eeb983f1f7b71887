// Techmap for threefry.ys: an enabled flip-flop becomes a wire (Q = D), so a pipeline's logic can be checked
// as one combinational function. Used only after the script has counted the registers it replaces.
module \$dffe (CLK, EN, D, Q);
    parameter WIDTH = 1;
    parameter CLK_POLARITY = 1'b1;
    parameter EN_POLARITY = 1'b1;
    input CLK, EN;
    input [WIDTH-1:0] D;
    output [WIDTH-1:0] Q;
    assign Q = D;
endmodule
