"""`metabnn fpga`: from a .mbnn model to a placed, routed, timed and packed FPGA bitstream with the open
toolchain (Yosys, nextpnr, ecppack/icepack from pip as YoWASP WebAssembly builds). docs/FPGA.md."""
