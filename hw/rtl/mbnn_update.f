// Sources of mbnn_update in elaboration order, one a line, relative to this folder (hw/rtl). Read by
// metabnn.backends.sources.file_list, `verilator -F`, the tests and `metabnn fpga`: the one list of this top.
mbnn_threefry.sv
mbnn_update_lane.sv
mbnn_update.sv
