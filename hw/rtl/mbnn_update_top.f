// Sources of mbnn_update_top in elaboration order, one a line, relative to this folder (hw/rtl). Read by
// metabnn.backends.sources.file_list, `verilator -F`, the tests and `metabnn fpga`: the one list of this top.
mbnn_xnor_popcount.sv
mbnn_pixel_dot.sv
mbnn_divc.sv
mbnn_spram.sv
mbnn_sign_spram.sv
mbnn_layer.sv
mbnn_chain.sv
mbnn_threefry.sv
mbnn_update_lane.sv
mbnn_update.sv
mbnn_update_bank.sv
mbnn_update_top.sv
