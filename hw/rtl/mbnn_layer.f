// Sources of mbnn_layer in elaboration order, one a line, relative to this folder (hw/rtl). Read by
// metabnn.backends.sources.file_list, `verilator -F`, the tests and `metabnn fpga`: the one list of this top.
mbnn_xnor_popcount.sv
mbnn_pixel_dot.sv
mbnn_divc.sv
mbnn_spram.sv
mbnn_sign_spram.sv
mbnn_layer.sv
