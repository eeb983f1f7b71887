// Sources of mbnn_conv_flatten in elaboration order, one a line, relative to this folder (hw/rtl). Read by
// metabnn.backends.sources.file_list, `verilator -F`, the tests: the one list of this block.
mbnn_conv_flatten.sv
