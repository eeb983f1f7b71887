"""Where a .mbnn image lies in memory for the C library: the Python backend and the host programs put it on a
cache line (so the exporter's 64-byte sign offsets give line-aligned rows), and a file of the old 8-byte layout
still loads, infers and learns in C exactly as the new layout of the same model does."""

from __future__ import annotations

import ctypes
import importlib.util
import subprocess
from pathlib import Path

import numpy as np
import pytest

from metabnn.backends.c import FIRMWARE, IMAGE_ALIGN, _Aligned, build_firmware
from metabnn.export.mbnn import from_bytes, save, to_bytes
from metabnn.sim import random_model

# the layout helpers live with the container's tests; loaded by path (test folders are not packages)
_spec = importlib.util.spec_from_file_location("mbnn_layout", Path(__file__).parents[1] / "export" / "mbnn_layout.py")
layout = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(layout)


@pytest.mark.parametrize("n", [0, 1, 63, 64, 1000, 4099])
def test_backend_copies_images_onto_a_cache_line(n):
    a = _Aligned(bytes(range(256)) * (n // 256 + 1))
    assert IMAGE_ALIGN == 64 and ctypes.addressof(a.buf) % 64 == 0
    data = bytes(range(256)) * (n // 256 + 1)
    assert a.bytes() == data


def test_old_8_aligned_file_runs_in_c_as_the_new_one(cbackend):
    m = random_model((70, 33, 20, 10), bits=6, table_bits=3, banks=2, adapt_shift=3, lr_shift=2, seed=4)
    new = to_bytes(m)
    old = layout.relayout_8(new)
    assert any(off % 64 for off in layout.sign_offsets(old)) and all(off % 64 == 0 for off in layout.sign_offsets(new))
    assert cbackend.load_status(old) == 0
    rng = np.random.default_rng(4)
    x = rng.integers(0, 256, (30, 70)).astype(np.uint8)
    y = rng.integers(0, 10, 30)
    assert np.array_equal(cbackend.scores(old, x, bank=1, adapt=True), cbackend.scores(new, x, bank=1, adapt=True))
    after_old = cbackend.learn(old, x, y, steps=5, bank=1, adapt=True)
    after_new = cbackend.learn(new, x, y, steps=5, bank=1, adapt=True)
    # the same state after every step; the old image keeps its layout, written again it is the new one
    for a, b in zip(after_old, after_new):
        assert layout.sign_offsets(a) == layout.sign_offsets(old)
        assert to_bytes(from_bytes(a)) == b


def _bench(*args) -> subprocess.CompletedProcess:
    ok, msg = build_firmware("bench")
    assert ok, msg
    return subprocess.run([str(FIRMWARE / "build" / "bench"), *map(str, args)], capture_output=True, text=True)


def test_host_read_file_puts_every_exported_sign_section_on_a_line(cbackend, tmp_path):
    """The harness reads the file with host_read_file (the demo's and tools' reader) and reports where the
    layer's signs lie in memory: on a line for the exporter's files, off one for some layer of an old file."""
    m = random_model((20, 64, 40, 33, 10), seed=2)
    save(m, tmp_path / "new.mbnn")
    (tmp_path / "old.mbnn").write_bytes(layout.relayout_8(to_bytes(m)))
    seen_old = []
    for layer in (1, 2, 3):
        r = _bench("binary_model", tmp_path / "new.mbnn", layer, 2)
        assert r.returncode == 0, r.stderr
        out = r.stdout.split()
        assert out[0] == "signs_line_offset" and out[1] == "0" and out[2] == "binops_per_s" and float(out[3]) > 0
        r = _bench("binary_model", tmp_path / "old.mbnn", layer, 2)
        assert r.returncode == 0, r.stderr
        seen_old.append(int(r.stdout.split()[1]))
    assert any(seen_old) and all(o % 8 == 0 for o in seen_old)
    # the pixel layer is not a binary layer; a file that is no model is the loader's one line
    r = _bench("binary_model", tmp_path / "new.mbnn", 0, 2)
    assert r.returncode == 2 and "not a binary layer" in r.stderr
    (tmp_path / "bad.mbnn").write_bytes(b"MBNN" + bytes(60))
    r = _bench("binary_model", tmp_path / "bad.mbnn", 1, 2)
    assert r.returncode == 1 and r.stderr.count("\n") == 1
