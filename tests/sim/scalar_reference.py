"""Slow scalar golden model, written for clarity, not speed.

Plain Python integers, one neuron and one synapse at a time, XOR-popcount on the
packed words exactly as docs/FORMAT.md words it. The vectorised model
(forward.py, learn.py) is tested against this on random models.
"""

from __future__ import annotations

from metabnn.sim.model import PIXELS, Q15_ONE, SIGN, Model


def rsr(x: int, s: int) -> int:
    if s == 0:
        return x
    mag = (abs(x) + (1 << (s - 1))) >> s
    return mag if x >= 0 else -mag


def sat(x: int, lo: int, hi: int) -> int:
    return lo if x < lo else hi if x > hi else x


def sgn(x: int) -> int:
    return (x > 0) - (x < 0)


MASK32 = 0xFFFFFFFF


def threefry2x32_20(c0: int, c1: int, k0: int, k1: int) -> tuple[int, int]:
    """FORMAT.md 4.4, line by line, on Python ints masked to 32 bits."""
    R = (13, 15, 26, 6, 17, 29, 16, 24)
    ks = (k0, k1, k0 ^ k1 ^ 0x1BD11BDA)
    x0, x1 = (c0 + ks[0]) & MASK32, (c1 + ks[1]) & MASK32
    for r in range(20):
        x0 = (x0 + x1) & MASK32
        x1 = ((x1 << R[r % 8]) | (x1 >> (32 - R[r % 8]))) & MASK32
        x1 ^= x0
        if r % 4 == 3:
            s = (r + 1) // 4
            x0 = (x0 + ks[s % 3]) & MASK32
            x1 = (x1 + ks[(s + 1) % 3] + s) & MASK32
    return x0, x1


def update_one(h: int, grad: int, lay, draw=None) -> int:
    """One synapse's step 5: 4.3 (draw None) or 4.4 (draw = (r0, r1))."""
    s = lay.lr_shift
    if draw is None:
        u = sat(-rsr(grad, s), -65535, 65535)
    else:
        q = (abs(grad) + (draw[0] & ((1 << s) - 1))) >> s
        u = sat(-sgn(grad) * q, -65535, 65535)
    if (h > 0 and u < 0) or (h < 0 and u > 0):
        tshift = lay.bits - 1 - lay.table_bits
        f = int(lay.table[min(abs(h) >> tshift, (1 << lay.table_bits) - 1)])
        c = 16384 if draw is None else draw[1] & 0x7FFF
        u = sgn(u) * ((abs(u) * f + c) >> 15)
    return sat(h + u, -(1 << (lay.bits - 1)), (1 << (lay.bits - 1)) - 1)


def bit(words, i: int) -> int:
    return (int(words[i // 32]) >> (i % 32)) & 1


def pack(bits: list[int]) -> list[int]:
    words = [0] * ((len(bits) + 31) // 32)
    for i, b in enumerate(bits):
        words[i // 32] |= (b & 1) << (i % 32)
    return words


def accumulate(layer, x) -> list[int]:
    """acc_j for one sample: x is a list of pixels (PIXELS) or of bits (BITS)."""
    accs = []
    for j in range(layer.N):
        row = layer.signs[j]
        if layer.in_kind == PIXELS:
            acc = sum((x[i] if bit(row, i) else -x[i]) for i in range(layer.K))
        else:
            a = pack(x)
            pc = sum(bin((a[w] ^ int(row[w])) & 0xFFFFFFFF).count("1") for w in range(len(a)))
            acc = layer.K - 2 * pc
        accs.append(acc)
    return accs


def forward_one(model: Model, image, bank: int = 0, adapt: bool = False):
    """Scores and a record [(layer input, d)] for one image; updates M in place when adapting."""
    x = [int(p) for p in image]
    record = []
    for layer in model.layers:
        accs = accumulate(layer, x)
        d = [acc * 256 - int(layer.M[bank][j]) for j, acc in enumerate(accs)]
        record.append((x, d))
        if adapt and layer.adapt_shift > 0:
            for j in range(layer.N):
                layer.M[bank][j] = int(layer.M[bank][j]) + rsr(d[j], layer.adapt_shift)
        if layer.out_kind == SIGN:
            x = [int((d[j] >= int(layer.C[bank][j])) != bool(layer.flip[bank][j])) for j in range(layer.N)]
        else:
            x = [int(layer.g[bank][j]) * d[j] + int(layer.b[bank][j]) for j in range(layer.N)]
    return x, record


def predict_one(model: Model, image, bank: int = 0, adapt: bool = False) -> int:
    scores, _ = forward_one(model, image, bank, adapt)
    return max(range(len(scores)), key=lambda j: (scores[j], -j))


def learn_step_one(model: Model, image, label: int, bank: int = 0, adapt: bool = False) -> Model:
    """FORMAT.md 4.3 (and 4.4 where a layer's rounding is 1), synapse by synapse. Returns a new model."""
    m = model.copy()
    scores, record = forward_one(m, image, bank, adapt)
    L = len(m.layers)
    out = m.layers[-1]
    # step 2: output error from the exp table
    top = max(scores)
    q = out.score_frac
    E = [int(m.exp_table[min((top - s) >> (q - 4), 255)]) for s in scores]
    total = sum(E)
    e = [(E[j] * Q15_ONE) // total - (Q15_ONE if j == label else 0) for j in range(len(scores))]
    # step 3-4: deltas, binary weights before the update
    deltas = [None] * L
    deltas[L - 1] = [sat(sgn(int(out.g[bank][j])) * e[j], -32767, 32767) for j in range(out.N)]
    for l in range(L - 2, -1, -1):
        lay, above = m.layers[l], m.layers[l + 1]
        d = record[l][1]
        dl = []
        for i in range(lay.N):
            back = sum((1 if bit(above.signs[j], i) else -1) * deltas[l + 1][j] for j in range(above.N))
            if not (int(lay.lo[bank][i]) <= d[i] <= int(lay.hi[bank][i])):
                back = 0
            s = -1 if lay.flip[bank][i] else 1
            dl.append(sat(s * rsr(back, lay.bshift), -32767, 32767))
        deltas[l] = dl
    # step 5: the metaplastic update, synapse by synapse (every synapse drawn when rounding = 1: no skipping here)
    for l, lay in enumerate(m.layers):
        xin = record[l][0]
        for j in range(lay.N):
            for i in range(lay.K):
                xi = xin[i] if lay.in_kind == PIXELS else (1 if xin[i] else -1)
                draw = None
                if lay.rounding == 1:
                    draw = threefry2x32_20((j * lay.K + i) & MASK32, lay.sr_step, lay.sr_seed, 0)
                h = update_one(int(lay.hidden[j][i]), deltas[l][j] * xi, lay, draw)
                lay.hidden[j][i] = h
                w = int(lay.signs[j][i // 32])
                w = (w | (1 << (i % 32))) if h >= 0 else (w & ~(1 << (i % 32)))
                lay.signs[j][i // 32] = w & 0xFFFFFFFF
        if lay.rounding == 1:
            lay.sr_step = (lay.sr_step + 1) & MASK32
    return m
