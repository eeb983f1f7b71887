"""export/readmemh.py writes the learning tables with the inference memories: F in l<l>_t.hex for every layer, the
away table G (FORMAT.md 4.2.1) in l<l>_a.hex only where the layer has one, and their descriptor fields (b, k,
away) in mbnn_tables.svh, so a model with G is never written as if it had none."""

from __future__ import annotations

import numpy as np

from metabnn.export.readmemh import SVH_NAME, TABLES_SVH_NAME, layer_file, write_readmemh
from metabnn.sim.random_model import random_model


def _table(path) -> np.ndarray:
    return np.array([int(line, 16) for line in path.read_text().split()], dtype=np.int64)


def test_away_table_written_and_removed(tmp_path):
    m = random_model([30, 20, 16, 10], bits=6, table_bits=3, seed=3)
    g = np.array([32768, 30000, 20000, 10000, 5000, 1000, 7, 0], np.uint16)
    m.layers[1].away = g
    written = write_readmemh(m, tmp_path)
    for l, lay in enumerate(m.layers):
        assert np.array_equal(_table(layer_file(tmp_path, l, "t")), lay.table)
        assert len(layer_file(tmp_path, l, "t").read_text().split()[0]) == 4  # Q15 up to 32768: 4 hex digits
    assert np.array_equal(_table(layer_file(tmp_path, 1, "a")), g)
    assert not layer_file(tmp_path, 0, "a").exists() and not layer_file(tmp_path, 2, "a").exists()
    assert layer_file(tmp_path, 1, "a") in written
    svh = (tmp_path / TABLES_SVH_NAME).read_text()
    assert "MBNN_AWAY = 16'd2;" in svh  # bit 1: layer 1 carries G
    assert "MBNN_HB = {" in svh and "8'd6, 8'd6, 8'd6}" in svh and "8'd3, 8'd3, 8'd3}" in svh
    shape = (tmp_path / SVH_NAME).read_text()
    m.layers[1].away = None  # the same folder, the next model (as the RTL builds' hex/ is reused): no stale G
    write_readmemh(m, tmp_path)
    assert not layer_file(tmp_path, 1, "a").exists()
    assert "MBNN_AWAY = 16'd0;" in (tmp_path / TABLES_SVH_NAME).read_text()
    assert (tmp_path / SVH_NAME).read_text() == shape  # the shape header (the builds' cache key) ignores G
