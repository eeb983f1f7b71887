"""Threefry-2x32 with 20 rounds (Salmon et al., SC'11, Random123): the generator of docs/FORMAT.md 4.4.

Counter-based: a draw is a pure function of (counter, key), so every synapse's draw depends on its index and the
layer's step alone, whatever order a backend visits synapses in. Vectorised over NumPy uint32 arrays (broadcast);
all arithmetic wraps mod 2^32, as the spec says.
"""

from __future__ import annotations

import numpy as np

ROTATIONS = (13, 15, 26, 6, 17, 29, 16, 24)
PARITY = 0x1BD11BDA  # Threefish key-schedule constant (ks[2] = k0 ^ k1 ^ PARITY)
ROUNDS = 20
# FORMAT.md 4.4's known-answer vectors ((c0, c1), (k0, k1), (x0, x1)), which every backend's tests check
KNOWN_ANSWERS = (
    ((0, 0), (0, 0), (0x6B200159, 0x99BA4EFE)),
    ((0xFFFFFFFF, 0xFFFFFFFF), (0xFFFFFFFF, 0xFFFFFFFF), (0x1CB996FC, 0xBB002BE7)),
    ((0x243F6A88, 0x85A308D3), (0x13198A2E, 0x03707344), (0xC4923A9C, 0x483DF7A0)),
)


def _rotl(x: np.ndarray, r: int) -> np.ndarray:
    return (x << np.uint32(r)) | (x >> np.uint32(32 - r))


def threefry2x32_20(c0, c1, k0, k1) -> tuple[np.ndarray, np.ndarray]:
    """(x0, x1) = threefry2x32_20(ctr = (c0, c1), key = (k0, k1)), elementwise over broadcast uint32 arrays."""
    c0, c1, k0, k1 = (np.asarray(v, dtype=np.uint32) for v in (c0, c1, k0, k1))
    ks = (k0, k1, k0 ^ k1 ^ np.uint32(PARITY))
    with np.errstate(over="ignore"):  # u32 wrap-around is the algorithm
        x0 = c0 + ks[0]
        x1 = c1 + ks[1]
        for r in range(ROUNDS):
            x0 = x0 + x1
            x1 = _rotl(x1, ROTATIONS[r % 8])
            x1 = x1 ^ x0
            if r % 4 == 3:
                s = (r + 1) // 4
                x0 = x0 + ks[s % 3]
                x1 = x1 + ks[(s + 1) % 3] + np.uint32(s)
    return np.asarray(x0, dtype=np.uint32), np.asarray(x1, dtype=np.uint32)


def synapse_draws(rows, K: int, seed: int, step: int) -> tuple[np.ndarray, np.ndarray]:
    """(r0, r1) [len(rows), K] for the synapses (j, i), j in rows, of a layer at step t:
    ctr = (j K + i, t), key = (seed, 0).

    Only the rows asked for are drawn (a neuron with delta 0 needs none, 4.4); the draws do not depend on which.
    """
    j = np.asarray(rows, dtype=np.uint64).reshape(-1, 1)
    idx = ((j * np.uint64(K) + np.arange(K, dtype=np.uint64)) & np.uint64(0xFFFFFFFF)).astype(np.uint32)
    return threefry2x32_20(idx, np.uint32(step), np.uint32(seed), np.uint32(0))


def layer_seed(seed: int, layer: int) -> int:
    """The exporter's per-layer seed (4.4): sr_seed_l = threefry2x32_20(ctr = (l, 0), key = (S, 0)).x0."""
    return int(threefry2x32_20(np.uint32(layer), np.uint32(0), np.uint32(seed), np.uint32(0))[0])
