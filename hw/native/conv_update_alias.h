// The conv learning top under the learning harness (metabnn/backends/rtl_native.py copies this file into a conv
// learning build as "Vmbnn_update_top.h"): learn_main.cpp drives Vmbnn_update_top; here that name is
// hw/rtl/mbnn_conv_update_top.sv's model, whose host ports are mbnn_update_top's, with one uint8 pixel a beat and
// update units on the dense layers only (MBNN_CONV_LEARN; mbnn_native_cfg.h gives MBNN_FIRST, the first of them).
#pragma once
#include "Vmbnn_conv_update_top.h"
#include "Vmbnn_conv_update_top___024root.h"
typedef Vmbnn_conv_update_top Vmbnn_update_top;
#define MBNN_CONV_LEARN 1
// dense layer l's update unit sits in the top's u_bank.g_layer[l].g_learn (mbnn_update_bank.sv), its engine in the
// conv chain's g_layer[l]
#define MBNN_UNIT_MEM(l, mem) \
    top->rootp->mbnn_conv_update_top__DOT__u_bank__DOT__g_layer__BRA__##l##__KET____DOT__g_learn__DOT__u_update__DOT__##mem
#define MBNN_ENGINE_MEM(l, mem) \
    top->rootp->mbnn_conv_update_top__DOT__u_chain__DOT__g_layer__BRA__##l##__KET____DOT__u_layer__DOT__##mem
