"""`$readmemh` files for the RTL inference engines (docs/FORMAT.md section 7, docs/HARDWARE.md).

`write_readmemh(model, out_dir)` writes, per layer l (hex digit, 0..f):
    l<l>_w.hex   packed sign words, N*W lines of 8 hex digits, row-major by neuron (FORMAT.md section 2)
    l<l>_m.hex   M, B*N lines, int32 two's complement, bank-major (bank 0: neuron 0..N-1, then bank 1, ...)
    l<l>_c.hex   C (SIGN layers), same shape
    l<l>_f.hex   flip bit f (SIGN layers), B*N lines of 1 hex digit
    l<l>_g.hex   g (SCORES layer), B*N lines, int32
    l<l>_b.hex   b (SCORES layer), B*N lines of 16 hex digits, int64
    l<l>_t.hex   the f_meta table F, 2^k lines of 4 hex digits (Q15, FORMAT.md 4.2)
    l<l>_a.hex   the away table G, the same shape (4.2.1), only for a layer whose descriptor has away = 1
and the learning tables' descriptor fields in `mbnn_tables.svh` (MBNN_HB, MBNN_TK: b and k per layer, which give
the tables' index idx(h) = min(|h| >> (b - 1 - k), 2^k - 1); MBNN_AWAY: bit l set where layer l has G, the
learning tops' AWAY parameter, metabnn.backends.rtl.away_mask), so a model with an away table is never written as
if it had none (inference does not need the tables; the update units take F and G over their host port, G with
tbl_away high, as a host loads them from these files or the .mbnn: hw/rtl/mbnn_update.sv);
and a header of the model's shape as SystemVerilog localparams: `mbnn_model.svh` for a dense model (what
hw/rtl/mbnn_top.sv includes), `mbnn_conv_model.svh` for a conv model (FORMAT.md version 2, what
hw/rtl/mbnn_conv_top.sv includes). The layout is independent of the hardware's SIMD/PE.

A dense model's memories are the .mbnn arrays as they are. A conv model's are those of the engine rows the RTL
runs (`rtl_layers`), which differ from the .mbnn arrays in two places, both exact rewrites:
- a conv layer on sign bits with padding (pad > 0) runs as *paired lanes*: mbnn_layer has no per-beat mask, so
  each synapse i becomes two, 2i and 2i + 1, with the same weight; the generator sends (a, a) for an in-image tap
  and (0, 1) for a padding tap (hw/rtl/mbnn_conv_top.sv), so a padding tap adds +1 - 1 = 0 and an in-image tap
  twice its XNOR: acc' = 2 acc. Its files hold K' = 2K synapses (w' bit 2i = w' bit 2i+1 = w bit i), M' = 2M and
  C' = 2C, clipped to +-(2D + 2) with D = 512 K (|d| <= D, so the clip changes no comparison): d' = 2d and
  d' >= C' iff d >= C. f is unchanged. A conv layer on pixels (the padding pixel is 0 and adds nothing) or without
  padding keeps its arrays.
- the first dense layer after the last conv reads the map position-major, as the engines stream it (index
  (y W + x) C + c), not in FORMAT.md 3.3's flatten order (c H W + y W + x): its weight columns are permuted to
  that order (FINN does the same); M, C, f, g, b are unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from metabnn.errors import OutputError
from metabnn.export.errors import dense_only
from metabnn.fileio import atomic_write_text, ensure_dir
from metabnn.sim.bits import pack_bits, unpack_bits
from metabnn.sim.model import BITS, PIXELS, SCORES, SIGN, ConvGeom, Model

MAX_LAYERS = 16  # FORMAT.md section 6: L <= 16; one hex digit names a layer's files
SVH_NAME = "mbnn_model.svh"
TABLES_SVH_NAME = "mbnn_tables.svh"  # apart from the shape header: that one is the RTL builds' cache key
CONV_SVH_NAME = "mbnn_conv_model.svh"


def _hex_lines(values, bits: int) -> str:
    """Two's complement hex, `bits` wide, one value per line."""
    digits = (bits + 3) // 4
    mask = (1 << bits) - 1
    return "".join(f"{int(v) & mask:0{digits}x}\n" for v in np.asarray(values).reshape(-1))


def layer_file(out_dir, layer: int, field: str) -> Path:
    return Path(out_dir) / f"l{layer:x}_{field}.hex"


@dataclass
class RTLLayer:
    """One engine's memories as the RTL holds them (see the module docstring)."""

    K: int  # synapses of the engine row (2K for a paired conv layer)
    N: int
    in_kind: int
    out_kind: int
    adapt_shift: int
    signs: np.ndarray  # uint32 [N, ceil(K/32)]
    M: np.ndarray  # int32 [B, N]
    C: np.ndarray | None
    flip: np.ndarray | None
    g: np.ndarray | None
    b: np.ndarray | None
    conv: ConvGeom | None = None
    paired: bool = False


def paired(lay) -> bool:
    """Whether the RTL runs this conv layer as paired lanes: sign-bit input with padding."""
    return lay.conv is not None and lay.in_kind == BITS and lay.conv.pad > 0


def rtl_layers(model: Model) -> list[RTLLayer]:
    """The engine memories of every layer (the .mbnn arrays, rewritten for a conv model as the docstring says)."""
    out = []
    prev = None
    for lay in model.layers:
        K, signs, M, C = lay.K, lay.signs, lay.M, lay.C
        if paired(lay):
            K = 2 * lay.K
            signs = pack_bits(np.repeat(unpack_bits(lay.signs, lay.K), 2, axis=1))
            M2 = 2 * lay.M.astype(np.int64)
            if np.abs(M2).max(initial=0) >= 1 << 31:
                raise ValueError("a paired conv layer's 2M does not fit int32")
            M = M2.astype(np.int32)
            lim = 2 * 512 * lay.K + 2
            C = np.clip(2 * lay.C.astype(np.int64), -lim, lim).astype(np.int32)
        elif lay.conv is None and prev is not None and prev.conv is not None:
            c, hw = prev.N, prev.conv.map_h * prev.conv.map_w
            bits = unpack_bits(lay.signs, lay.K).reshape(lay.N, c, hw).transpose(0, 2, 1).reshape(lay.N, lay.K)
            signs = pack_bits(bits)
        out.append(RTLLayer(K=K, N=lay.N, in_kind=lay.in_kind, out_kind=lay.out_kind, adapt_shift=lay.adapt_shift,
                            signs=np.asarray(signs, dtype=np.uint32), M=M, C=C, flip=lay.flip, g=lay.g, b=lay.b,
                            conv=lay.conv, paired=paired(lay)))
        prev = lay
    return out


def _check(model: Model) -> None:
    L = len(model.layers)
    if not 2 <= L <= MAX_LAYERS:
        raise ValueError(f"the RTL takes 2..{MAX_LAYERS} layers, the model has {L}")
    for l, lay in enumerate(model.layers):
        want_in = PIXELS if l == 0 else BITS
        want_out = SCORES if l == L - 1 else SIGN
        if lay.in_kind != want_in or lay.out_kind != want_out:
            raise ValueError(f"layer {l}: kinds ({lay.in_kind}, {lay.out_kind}) do not fit a pixels -> "
                             "sign ... -> scores chain")
        if lay.signs.shape != (lay.N, lay.W):
            raise ValueError(f"layer {l}: signs of shape {lay.signs.shape}, expected {(lay.N, lay.W)}")
        if not 0 <= lay.adapt_shift <= 24:
            raise ValueError(f"layer {l}: adapt_shift {lay.adapt_shift} outside 0..24")
        if lay.conv is not None and (l > 0 and model.layers[l - 1].conv is None):
            raise ValueError(f"layer {l}: a conv layer after a dense layer")
    if model.has_conv:
        if model.layers[0].conv is None:
            raise ValueError("the conv RTL takes the conv layers first (layer 0 is dense)")
        if any(lay.adapt_shift for lay in model.layers):
            raise ValueError("the conv RTL runs frozen normalization only (a layer has adapt_shift > 0)")
    if not 1 <= model.n_banks <= 255:
        raise ValueError(f"the RTL takes 1..255 banks, the model has {model.n_banks}")


def _packed(vals, width: int) -> str:
    vals = list(vals) + [0] * (MAX_LAYERS - len(vals))
    return "{" + ", ".join(f"{width}'d{v}" for v in reversed(vals)) + "}"


def _hexdir(hexdir) -> str:
    hexdir = str(Path(hexdir).resolve())
    if '"' in hexdir or "\\" in hexdir:
        raise OutputError(f"hex folder path {hexdir!r} cannot be written as a Verilog string (it holds \" or \\)")
    return hexdir


def model_svh(model: Model, hexdir) -> str:
    """The shape of a dense model as localparams (packed vectors, layer l in the bits [32l +: 32])."""
    dense_only(model, "mbnn_top (the dense RTL top; a conv model runs on hw/rtl/mbnn_conv_top.sv)")
    L = len(model.layers)
    hexdir = _hexdir(hexdir)
    return (
        "// mbnn_model.svh: the model's shape for hw/rtl/mbnn_top.sv (docs/FORMAT.md section 7).\n"
        "// Generated by metabnn.export.readmemh.write_readmemh; do not edit.\n"
        f"localparam int MBNN_L = {L};\n"
        f"localparam int MBNN_B = {model.n_banks};\n"
        f"localparam logic [32*{MAX_LAYERS}-1:0] MBNN_K = {_packed([lay.K for lay in model.layers], 32)};\n"
        f"localparam logic [32*{MAX_LAYERS}-1:0] MBNN_N = {_packed([lay.N for lay in model.layers], 32)};\n"
        f"localparam logic [8*{MAX_LAYERS}-1:0] MBNN_ADAPT = "
        f"{_packed([lay.adapt_shift for lay in model.layers], 8)};\n"
        f'localparam MBNN_HEXDIR = "{hexdir}";\n'
    )


def conv_model_svh(model: Model, hexdir) -> str:
    """The shape of a conv model for hw/rtl/mbnn_conv_top.sv: per layer (bits [32l +: 32]) the engine's K (2K for
    a paired layer) and N, and for the conv layers the geometry, pool and pairing (0 for the dense layers)."""
    L = len(model.layers)
    rl = rtl_layers(model)
    nc = sum(lay.conv is not None for lay in model.layers)
    hexdir = _hexdir(hexdir)
    g = [lay.conv or ConvGeom(0, 0, 0, 0, 0, 0, 0) for lay in model.layers]
    last = model.layers[nc - 1].conv
    vec = lambda name, vals: f"localparam logic [32*{MAX_LAYERS}-1:0] {name} = {_packed(vals, 32)};\n"
    return (
        "// mbnn_conv_model.svh: the conv model's shape for hw/rtl/mbnn_conv_top.sv (docs/HARDWARE.md, conv).\n"
        "// Generated by metabnn.export.readmemh.write_readmemh; do not edit.\n"
        f"localparam int MBNN_L = {L};\n"
        f"localparam int MBNN_NC = {nc};\n"
        f"localparam int MBNN_B = {model.n_banks};\n"
        + vec("MBNN_K", [r.K for r in rl]) + vec("MBNN_N", [r.N for r in rl])
        + vec("MBNN_CIN", [x.in_c for x in g]) + vec("MBNN_HIN", [x.in_h for x in g])
        + vec("MBNN_WIN", [x.in_w for x in g]) + vec("MBNN_KS", [x.kernel for x in g])
        + vec("MBNN_S", [x.stride for x in g]) + vec("MBNN_P", [x.pad for x in g])
        + vec("MBNN_POOL", [int(bool(x.pool)) for x in g]) + vec("MBNN_PAIR", [int(r.paired) for r in rl])
        + f"localparam int MBNN_FC = {model.layers[nc - 1].N};   // channels of the flattened map\n"
        f"localparam int MBNN_FPOS = {last.map_h * last.map_w};   // its positions\n"
        f'localparam MBNN_HEXDIR = "{hexdir}";\n'
    )


def tables_svh(model: Model) -> str:
    """The descriptor fields of the learning tables (FORMAT.md 6: hidden bits b, table bits k, away) as
    localparams, layer l at bits [8l +: 8] (MBNN_AWAY: bit l)."""
    away = sum(1 << l for l, lay in enumerate(model.layers) if lay.away is not None)
    return (
        "// mbnn_tables.svh: how to index l<l>_t.hex (f_meta, FORMAT.md 4.2) and l<l>_a.hex (away, 4.2.1):\n"
        "// idx(h) = min(|h| >> (HB - 1 - TK), 2^TK - 1). Generated by metabnn.export.readmemh; do not edit.\n"
        f"localparam logic [8*{MAX_LAYERS}-1:0] MBNN_HB = {_packed([lay.bits for lay in model.layers], 8)};\n"
        f"localparam logic [8*{MAX_LAYERS}-1:0] MBNN_TK = {_packed([lay.table_bits for lay in model.layers], 8)};\n"
        f"localparam logic [{MAX_LAYERS - 1}:0] MBNN_AWAY = {MAX_LAYERS}'d{away};\n"
    )


def write_readmemh(model: Model, out_dir) -> list[Path]:
    """Write the hex files and the shape header into out_dir (created); returns the paths written."""
    _check(model)
    conv = model.has_conv
    # before any file: a path Verilog cannot quote writes nothing
    svh = conv_model_svh(model, out_dir) if conv else model_svh(model, out_dir)
    layers = rtl_layers(model)
    out = ensure_dir(out_dir)
    written = []

    def put(path: Path, text: str):
        # each file atomically: a full disk must not leave a truncated l0_w.hex that $readmemh would load
        atomic_write_text(path, text)
        written.append(path)

    for l, lay in enumerate(layers):
        put(layer_file(out, l, "w"), _hex_lines(lay.signs.astype(np.uint64), 32))
        put(layer_file(out, l, "m"), _hex_lines(lay.M.astype(np.int64), 32))
        if lay.out_kind == SIGN:
            put(layer_file(out, l, "c"), _hex_lines(lay.C.astype(np.int64), 32))
            put(layer_file(out, l, "f"), _hex_lines(lay.flip.astype(np.int64), 1))
        else:
            put(layer_file(out, l, "g"), _hex_lines(lay.g.astype(np.int64), 32))
            put(layer_file(out, l, "b"), _hex_lines(lay.b.astype(np.int64), 64))
    for l, lay in enumerate(model.layers):
        put(layer_file(out, l, "t"), _hex_lines(lay.table, 16))
        a = layer_file(out, l, "a")
        if lay.away is not None:
            put(a, _hex_lines(lay.away, 16))
        elif a.exists():
            a.unlink()  # a folder rewritten for each model (the RTL builds' hex/): no stale G of the one before
    put(out / TABLES_SVH_NAME, tables_svh(model))
    put(out / (CONV_SVH_NAME if conv else SVH_NAME), svh)
    return written
