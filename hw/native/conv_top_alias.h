// The conv inference top under the inference harness (metabnn/backends/rtl_native.py copies this file into a
// conv build as "Vmbnn_top.h"): infer_main.cpp drives Vmbnn_top; here that name is hw/rtl/mbnn_conv_top.sv's
// model, whose stream protocol and memory port are mbnn_top's, with one uint8 pixel a beat (the build's
// MBNN_SIMD is 1; the engines' SIMD is the Verilog parameter). No trace build (its layer taps are mbnn_top's).
#pragma once
#include "Vmbnn_conv_top.h"
typedef Vmbnn_conv_top Vmbnn_top;
