"""Shared by the update unit's cocotb tests (hw/tb/mbnn_update, hw/tb/mbnn_update_top): memory packing, a driver."""
