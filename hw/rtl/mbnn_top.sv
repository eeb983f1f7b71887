// A whole exported MLP (docs/FORMAT.md section 3) for inference: the chain of mbnn_layer engines
// (mbnn_chain.sv, shared with mbnn_update_top.sv) and the host's memory port.
//
// The model's shape comes from `mbnn_model.svh`, written by metabnn.export.readmemh next to the hex
// files it initialises the memories from (docs/FORMAT.md section 7); put that folder on the include path.
//
// Input : ceil(K0/SIMD) beats of SIMD uint8 pixels (pixel i of a beat at in_data[8i +: 8]); in_bank and
//         in_adapt travel with the image (sampled with its first beat by every layer in turn).
// Output: one beat per image: out_class = argmax of the scores (lowest index on a tie), out_score = its
//         int64 score.
// Memory port: mem_layer selects the layer, then mbnn_layer's wr_sel / wr_addr / wr_data / wr_mask.
// Reset: synchronous, active high.
`ifndef MBNN_SPRAM
`define MBNN_SPRAM 0
`endif
`ifndef MBNN_SHALLOW
`define MBNN_SHALLOW 0
`endif
module mbnn_top #(
    parameter int SIMD = 32,   // input elements per cycle in every layer: 1, 2, 4, 8, 16 or 32
    parameter int PE = 4,      // neurons in parallel in every layer
    // bit l: layer l's sign words in iCE40 UP5K SPRAM (mbnn_sign_spram.sv), which a bitstream cannot fill:
    // the host writes them through the memory port first. The default comes from the macro MBNN_SPRAM
    // (metabnn fpga sets it for the UP5K: a device choice, made without touching the board wrapper).
    parameter int SPRAM = `MBNN_SPRAM,
    // 1: every layer's pipeline for a slow clock (mbnn_layer's SHALLOW: fewer registers, the same cycle count);
    // from the macro MBNN_SHALLOW as SPRAM (metabnn fpga sets it for the iCE40 parts, whose boards run at 12 MHz)
    parameter int SHALLOW = `MBNN_SHALLOW
) (
    input  logic                clk,
    input  logic                rst,
    input  logic                in_valid,
    output logic                in_ready,
    input  logic [8*SIMD-1:0]   in_data,
    input  logic [7:0]          in_bank,
    input  logic                in_adapt,
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
    /* verilator lint_off UNUSEDPARAM */  // this top needs part of the shape; mbnn_chain all of it
    `include "mbnn_model.svh"   // MBNN_L, MBNN_B, MBNN_K, MBNN_N, MBNN_ADAPT, MBNN_HEXDIR
    /* verilator lint_on UNUSEDPARAM */

    // the host's memory port reaches the layer mem_layer names
    logic [MBNN_L-1:0] wr_en;
    for (genvar l = 0; l < MBNN_L; l++) begin : g_wr
        assign wr_en[l] = mem_we && mem_layer == 4'(l);
    end
    /* verilator lint_off UNUSEDSIGNAL */  // the layer input taps are the learning top's
    logic [MBNN_L-1:0]        l_take;
    logic [8*SIMD*MBNN_L-1:0] l_data;
    /* verilator lint_on UNUSEDSIGNAL */
    mbnn_chain #(.SIMD(SIMD), .PE(PE), .L(MBNN_L), .SPRAM(SPRAM), .SHALLOW(SHALLOW)) u_chain (
        .clk(clk), .rst(rst),
        .in_valid(in_valid), .in_ready(in_ready), .in_data(in_data), .in_bank(in_bank), .in_adapt(in_adapt),
        .out_valid(out_valid), .out_ready(out_ready), .out_class(out_class), .out_score(out_score),
        .busy(busy),
        .wr_en(wr_en), .wr_sel({MBNN_L{mem_sel}}), .wr_addr({MBNN_L{mem_addr}}),
        .wr_data({MBNN_L{mem_wdata}}), .wr_mask({MBNN_L{mem_wmask}}),
        .l_take(l_take), .l_data(l_data)
    );
endmodule
