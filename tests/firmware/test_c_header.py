"""The exporter's C header compiles (C99, -Werror) and loads through the one C loader, read-only,
giving the golden model's scores."""

from __future__ import annotations

import subprocess

import numpy as np

from metabnn.export.c_header import write_c_header
from metabnn.sim import forward, random_model
from metabnn.backends.c import FIRMWARE

PROGRAM = r"""
#include <stdio.h>
#include "metabnn.h"
#include "net.h"
static uint64_t ws[4096];
int main(void) {
    mbnn_model m; uint8_t px[37]; int64_t s[5];
    for (int i = 0; i < 37; i++) px[i] = (uint8_t)(i * 7);
    mbnn_status st = mbnn_load(&m, net_words, NET_SIZE);
    if (st == MBNN_OK) st = mbnn_forward(&m, px, 37, ws, sizeof ws, s, 5);
    if (st != MBNN_OK) { printf("%s\n", mbnn_status_str(st)); return 1; }
    for (int j = 0; j < 5; j++) printf("%lld\n", (long long)s[j]);
    return 0;
}
"""


def test_c_header_loads_and_matches_golden(cbackend, tmp_path):
    model = random_model((37, 20, 5), bits=10, table_bits=4, seed=3)
    write_c_header(model, tmp_path / "net.h", name="net")
    (tmp_path / "main.c").write_text(PROGRAM)
    exe = tmp_path / "main"
    subprocess.run(["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-O2", f"-I{FIRMWARE / 'include'}",
                    f"-I{tmp_path}", str(tmp_path / "main.c"), str(FIRMWARE / "build" / "libmetabnn.a"),
                    "-o", str(exe)], check=True)
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.split()
    x = (np.arange(37) * 7 % 256).astype(np.uint8).reshape(1, -1)
    assert [int(v) for v in out] == forward(model, x)[0].tolist()
