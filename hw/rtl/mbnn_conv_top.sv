// A whole exported conv net (docs/FORMAT.md 3.3, version 2) for inference: the datapath of mbnn_conv_chain.sv
// (per conv layer mbnn_swg -> mbnn_layer [-> mbnn_pool], then mbnn_conv_flatten and the dense layers; its header
// has the model files, the stream, the bank and the schedule) behind one memory port. docs/HARDWARE.md "Conv top"
// has the cycle formula (metabnn.backends.rtl.conv_cycles_formula).
//
// Input : the image one uint8 pixel a beat, position-major (the .mbnn input (CHW) transposed to HWC).
// Output: one beat per image: out_class = argmax of the scores (lowest index on a tie), out_score = its score.
// in_adapt is ignored: the conv top runs frozen normalization.
// Memory port: mem_layer selects the layer, then mbnn_layer's wr_sel / wr_addr / wr_data / wr_mask, in the
//         engine-row layout of mbnn_conv_chain.sv. Reset: synchronous, active high.
module mbnn_conv_top #(
    parameter int SIMD = 32,   // elements per cycle in every layer: 1, 2, 4, 8, 16 or 32 (>= 2 with paired layers)
    parameter int PE = 4       // neurons in parallel in every layer
) (
    input  logic                clk,
    input  logic                rst,
    input  logic                in_valid,
    output logic                in_ready,
    input  logic [7:0]          in_data,
    input  logic [7:0]          in_bank,
    /* verilator lint_off UNUSEDSIGNAL */
    input  logic                in_adapt,
    /* verilator lint_on UNUSEDSIGNAL */
    output logic                out_valid,
    input  logic                out_ready,
    output logic [15:0]         out_class,
    output logic [63:0]         out_score,
    output logic                busy,
    input  logic                mem_we,
    input  logic [3:0]          mem_layer,
    input  logic [2:0]          mem_sel,
    input  logic [31:0]         mem_addr,
    input  logic [31:0]         mem_wdata,
    input  logic [31:0]         mem_wmask
);
    /* verilator lint_off UNUSEDPARAM */  // mbnn_conv_chain needs the whole shape, this top only MBNN_L
    `include "mbnn_conv_model.svh"   // MBNN_L, MBNN_NC, MBNN_B, MBNN_K, MBNN_N, conv geometry, MBNN_HEXDIR
    /* verilator lint_on UNUSEDPARAM */

    logic [MBNN_L-1:0] wr_en;
    /* verilator lint_off UNUSEDSIGNAL */  // the learning top's taps
    logic [MBNN_L-1:0] l_take;
    logic [SIMD*MBNN_L-1:0] l_data;
    /* verilator lint_on UNUSEDSIGNAL */
    for (genvar l = 0; l < MBNN_L; l++) begin : g_we
        assign wr_en[l] = mem_we && mem_layer == 4'(l);
    end
    mbnn_conv_chain #(.SIMD(SIMD), .PE(PE), .L(MBNN_L)) u_chain (
        .clk(clk), .rst(rst),
        .in_valid(in_valid), .in_ready(in_ready), .in_data(in_data), .in_bank(in_bank),
        .out_valid(out_valid), .out_ready(out_ready), .out_class(out_class), .out_score(out_score), .busy(busy),
        .wr_en(wr_en), .wr_sel({MBNN_L{mem_sel}}), .wr_addr({MBNN_L{mem_addr}}), .wr_data({MBNN_L{mem_wdata}}),
        .wr_mask({MBNN_L{mem_wmask}}), .l_take(l_take), .l_data(l_data)
    );
endmodule
