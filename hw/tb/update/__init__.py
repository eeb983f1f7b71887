"""cocotb testbenches of the on-chip metaplastic update unit (hw/rtl/mbnn_update*.sv)."""
