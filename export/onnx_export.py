"""The integer model of docs/FORMAT.md as a standard ONNX graph, and back.

`to_onnx(model, bank)` builds a graph that onnxruntime runs on uint8 images [n, K0]
(dynamic batch) and that computes FORMAT.md section 3 exactly, with integer ops only:

    acc    = MatMulInteger(x, W)                  uint8 pixels or int8 +-1  x  int8 +-1 -> int32
    d      = Cast<int64>(acc) * 256 - M[bank]     int64
    SIGN   : x' = Where((d >= C[bank]) Xor flip[bank], +1, -1)     int8, the next layer's input
    SCORES : scores = g[bank] * d + b[bank]      int64;  label = ArgMax(scores), lowest index on ties

Outputs: `label` int64 [n] and `scores` int64 [n, classes]. Every accumulator is an exact
integer (|acc| <= 255 * 16384 < 2^31); no float op touches a value.

A conv layer (FORMAT.md 3.3, version 2) is the same computation at every position, with standard ops:

    acc    = ConvInteger(x, W)       x [n, C, H, W] uint8 pixels (the images reshaped) or int8 +-1; W int8 +-1
                                     [N, C, k, k]; zero padding (ConvInteger's pads read the zero point, 0)
    d, SIGN as above, M, C, flip per output channel ([N, 1, 1], broadcast over the positions)
    pool   : MaxPool 2x2 stride 2 on the int8 +-1 map (the OR of the +1 bits; an odd last row dropped)
    Flatten(axis=1) before the first dense layer: NCHW order, FORMAT.md's flatten

W is derived from the hidden weights as for dense layers, rows [N, K] with synapse (ky k + kx) C + c reshaped
to [N, k, k, C] and transposed to ONNX's [N, C, k, k].

What travels in the file, so that a model can go on learning from the .onnx alone:
- the hidden weights are initializers that the graph *uses*: the binary weight matrix is
  derived in the graph as Where(hidden >= 0, +1, -1) (FORMAT.md 4.1), so the file cannot hold
  signs that disagree with the hidden weights (onnxruntime folds this at session start);
- the normalization state of *all* banks is stored [B, N] and the graph selects row `bank`
  with Gather, so every bank travels and each initializer is used;
- what only learning needs (the f_meta tables, the straight-through windows lo/hi of every
  bank, the softmax exp table) and the per-layer header fields go in `metadata_props` as
  JSON of integers under `metabnn.*` keys. Unused initializers would also be legal ONNX, but
  onnxruntime warns on every load and graph optimizers delete them;
- what the model was trained on (the `.mbnn` metadata section, docs/FORMAT.md 6.1), as the
  same canonical JSON under `metabnn.trained_on`, when the model carries it.

`from_onnx(path)` reads it all back into a `metabnn.sim.Model`, checks every range of
FORMAT.md section 6, and rebuilds the graph to check that the file computes what it claims.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from metabnn.errors import UsageError
from metabnn.export import metadata
from metabnn.export.errors import FormatError
from metabnn.fileio import atomic_write_bytes
from metabnn.sim.bits import pack_bits
from metabnn.sim.model import BITS, PIXELS, SCORES, SIGN, SOFTMAX_TABLE_SIZE, ConvGeom, Layer, Model

FORMAT_VERSION = 1  # metabnn.format_version of a dense model (unchanged bytes); a conv model writes 2
FORMAT_VERSIONS = (1, 2)
OPSET = 21  # ai.onnx opset; every op used here is unchanged since opset 13 or earlier
IR_VERSION = 10  # the IR version that goes with opset 21
INPUT, LABEL, SCORES_OUT = "images", "label", "scores"
KEY = "metabnn."  # prefix of every metadata_props key written here

# per-layer header fields carried in metadata (FORMAT.md section 6, descriptor), in order
HEADER_FIELDS = ("K", "N", "in_kind", "out_kind", "bits", "table_bits", "lr_shift", "bshift",
                 "adapt_shift", "score_frac", "meta", "scale")
# a conv layer's entry also has "conv": its geometry in this order (FORMAT.md 6, descriptor bytes 52..61)
CONV_FIELDS = ("in_c", "in_h", "in_w", "kernel", "stride", "pad", "pool")


def _version(model: Model) -> int:
    return 2 if model.has_conv else FORMAT_VERSION


def _onnx():
    try:
        import onnx
    except ImportError as e:  # optional dependency: pip install metabnn[onnx]
        raise UsageError(f"ONNX export needs the onnx package (pip install 'metabnn[onnx]'): {e}") from None
    return onnx


# --------------------------------------------------------------------------- export

def to_onnx(model: Model, bank: int = 0):
    """The ONNX ModelProto of `model` with normalization bank `bank` frozen in the graph."""
    onnx = _onnx()
    from onnx import TensorProto, helper, numpy_helper

    if not isinstance(bank, (int, np.integer)) or not 0 <= int(bank) < model.n_banks:
        raise UsageError(f"bank {bank} out of range: the model has {model.n_banks} bank(s)")
    bank = int(bank)
    nodes, inits = [], []

    def const(name, value):
        inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def node(op, inputs, output, **attrs):
        nodes.append(helper.make_node(op, inputs, [output], name=output, **attrs))
        return output

    def bank_row(table_name, array, dtype, to_int64=True):
        """Gather row `bank` of a [B, N] initializer (and widen it to int64 for the arithmetic)."""
        row = node("Gather", [const(table_name, np.asarray(array, dtype=dtype)), "bank"], table_name + "_bank", axis=0)
        return node("Cast", [row], row + "64", to=TensorProto.INT64) if to_int64 else row

    const("bank", np.int64(bank))
    const("zero_i32", np.int32(0))
    const("plus_one_i8", np.int8(1))
    const("minus_one_i8", np.int8(-1))
    const("q8_i64", np.int64(256))
    if model.has_conv:
        const("channel_axes", np.asarray([1, 2], dtype=np.int64))

    x = INPUT
    for l, lay in enumerate(model.layers):
        p = f"l{l}."
        g = lay.conv
        hidden = np.asarray(lay.hidden, dtype=np.int8 if lay.bits <= 8 else np.int16)
        # binary weight = (h >= 0) ? +1 : -1
        h32 = node("Cast", [const(p + "hidden", hidden)], p + "hidden_i32", to=TensorProto.INT32)
        wbit = node("GreaterOrEqual", [h32, "zero_i32"], p + "weight_bit")
        w_nk = node("Where", [wbit, "plus_one_i8", "minus_one_i8"], p + "weight_pm1")
        if g is None:
            if l > 0 and model.layers[l - 1].conv is not None:  # the map as a vector, NCHW (FORMAT.md 3.3)
                x = node("Flatten", [x], p + "flat", axis=1)
            w = node("Transpose", [w_nk], p + "weight_pm1_kn", perm=[1, 0])  # [K, N] for x @ W
            acc = node("MatMulInteger", [x, w], p + "acc")
            per_channel = lambda v: v
        else:
            if l == 0:  # the images' C H W pixels, in CHW order, as the map
                shape = const(p + "map_shape", np.asarray([-1, g.in_c, g.in_h, g.in_w], dtype=np.int64))
                x = node("Reshape", [x, shape], p + "map")
            # rows [N, K], synapse (ky k + kx) C + c  ->  [N, k, k, C]  ->  ONNX's [N, C, k, k]
            kshape = const(p + "kernel_shape", np.asarray([lay.N, g.kernel, g.kernel, g.in_c], dtype=np.int64))
            w_kkc = node("Reshape", [w_nk, kshape], p + "weight_pm1_nkkc")
            w = node("Transpose", [w_kkc], p + "weight_pm1_nckk", perm=[0, 3, 1, 2])
            acc = node("ConvInteger", [x, w], p + "acc", kernel_shape=[g.kernel, g.kernel],
                       strides=[g.stride, g.stride], pads=[g.pad] * 4)
            per_channel = lambda v: node("Unsqueeze", [v, "channel_axes"], v + "_nhw")  # [N] -> [N, 1, 1]
        acc256 = node("Mul", [node("Cast", [acc], p + "acc_i64", to=TensorProto.INT64), "q8_i64"], p + "acc_q8")
        d = node("Sub", [acc256, per_channel(bank_row(p + "M", lay.M, np.int32))], p + "d")
        if lay.out_kind == SIGN:
            ge = node("GreaterOrEqual", [d, per_channel(bank_row(p + "C", lay.C, np.int32))], p + "ge")
            flip = per_channel(bank_row(p + "flip", lay.flip != 0, np.bool_, to_int64=False))
            bit = node("Xor", [ge, flip], p + "bit")
            x = node("Where", [bit, "plus_one_i8", "minus_one_i8"], p + "out_pm1")
            if g is not None and g.pool:
                x = node("MaxPool", [x], p + "pool", kernel_shape=[2, 2], strides=[2, 2])
        else:
            gd = node("Mul", [bank_row(p + "g", lay.g, np.int32), d], p + "gd")
            node("Add", [gd, bank_row(p + "b", lay.b, np.int64)], SCORES_OUT)
            node("ArgMax", [SCORES_OUT], LABEL, axis=1, keepdims=0, select_last_index=0)

    graph = helper.make_graph(
        nodes, "metabnn_integer_bnn",
        [helper.make_tensor_value_info(INPUT, TensorProto.UINT8, ["n", model.input_size])],
        [helper.make_tensor_value_info(LABEL, TensorProto.INT64, ["n"]),
         helper.make_tensor_value_info(SCORES_OUT, TensorProto.INT64, ["n", model.n_classes])],
        inits)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION,
                              producer_name="metabnn", producer_version=str(_version(model)),
                              doc_string="metabnn integer BNN (docs/FORMAT.md); learning state in metadata_props")
    helper.set_model_props(proto, _metadata(model, bank))
    return proto


def _metadata(model: Model, bank: int) -> dict:
    layers = []
    for lay in model.layers:
        entry = {f: (float(np.float32(getattr(lay, f))) if f in ("meta", "scale") else int(getattr(lay, f)))
                 for f in HEADER_FIELDS}
        if lay.conv is not None:
            entry["conv"] = [int(getattr(lay.conv, f)) for f in CONV_FIELDS]
        entry["table"] = np.asarray(lay.table).astype(int).tolist()
        if lay.out_kind == SIGN:
            entry["lo"] = np.asarray(lay.lo).astype(int).tolist()
            entry["hi"] = np.asarray(lay.hi).astype(int).tolist()
        layers.append(entry)
    props = {} if model.meta is None else {KEY + "trained_on": metadata.encode(model.meta).decode("utf-8")}
    return props | {
        KEY + "format_version": str(_version(model)),
        KEY + "bank": str(bank),
        KEY + "banks": str(model.n_banks),
        KEY + "sizes": ",".join(str(s) for s in [model.input_size] + [lay.N for lay in model.layers]),
        KEY + "layers": json.dumps(layers, separators=(",", ":")),
        KEY + "exp_table": json.dumps(np.asarray(model.exp_table).astype(int).tolist(), separators=(",", ":")),
    }


def save_onnx(model: Model, path, bank: int = 0) -> None:
    """Write `to_onnx(model, bank)` to `path` atomically."""
    atomic_write_bytes(path, to_onnx(model, bank).SerializeToString())


# --------------------------------------------------------------------------- import

def from_onnx(source) -> Model:
    """The full integer model (hidden weights, tables, every bank) from an .onnx written by to_onnx.

    `source`: a path, the file's bytes, or an onnx.ModelProto. Raises FormatError with a
    message naming the problem for anything else.
    """
    proto, bank, version = _load(source)
    meta = {p.key: p.value for p in proto.metadata_props}
    layers_meta = _json(meta, "layers")
    exp_table = np.asarray(_json(meta, "exp_table"), dtype=object)
    if not isinstance(layers_meta, list) or not 2 <= len(layers_meta) <= 16:
        raise FormatError("metadata 'metabnn.layers' must list 2..16 layers")
    inits = {t.name: t for t in proto.graph.initializer}
    layers = [_layer(l, entry, inits) for l, entry in enumerate(layers_meta)]
    _check_chain(layers)
    if exp_table.shape != (SOFTMAX_TABLE_SIZE,) or not _all_ints(exp_table, 0, 32768) or exp_table[0] != 32768:
        raise FormatError("exp table: need 256 integers in 0..32768 with E[0] = 32768")
    model = Model(layers=layers, exp_table=exp_table.astype(np.uint16))
    if version != _version(model):
        raise FormatError(f"format version {version} does not fit the layers: 2 exactly when there is a conv layer")
    if not 0 <= bank < model.n_banks:
        raise FormatError(f"metadata bank {bank} out of range: {model.n_banks} bank(s)")
    if KEY + "trained_on" in meta:  # the .mbnn metadata section, same bytes (FORMAT.md 6.1)
        model.meta = metadata.decode(meta[KEY + "trained_on"].encode("utf-8"), model.n_banks)
    _mbnn_accepts(model)
    rebuilt = to_onnx(model, bank).graph
    if rebuilt.SerializeToString(deterministic=True) != proto.graph.SerializeToString(deterministic=True):
        raise FormatError("the graph does not compute the integer model stored in the file "
                              "(edited or optimized after export?)")
    return model


def _load(source):
    onnx = _onnx()
    try:
        if isinstance(source, onnx.ModelProto):
            proto = source
        elif isinstance(source, (bytes, bytearray)):
            proto = onnx.load_from_string(bytes(source))
        else:
            proto = onnx.load(str(Path(source)), load_external_data=False)
    except OSError as e:
        raise FormatError(f"cannot read {source}: {e.strerror or e}") from None
    except Exception as e:  # protobuf DecodeError and friends: not an ONNX file
        raise FormatError(f"not an ONNX model ({type(e).__name__}: {e})") from None
    meta = {p.key: p.value for p in proto.metadata_props}
    if KEY + "format_version" not in meta:
        raise FormatError("not a metabnn ONNX model (no 'metabnn.format_version' in metadata_props)")
    if meta[KEY + "format_version"] not in [str(v) for v in FORMAT_VERSIONS]:
        raise FormatError(f"format version {meta[KEY + 'format_version']!r}, this reader knows 1 and 2")
    try:
        bank = int(meta.get(KEY + "bank", ""))
    except ValueError:
        raise FormatError("metadata 'metabnn.bank' is not an integer") from None
    return proto, bank, int(meta[KEY + "format_version"])


def _json(meta: dict, key: str):
    try:
        return json.loads(meta[KEY + key])
    except KeyError:
        raise FormatError(f"metadata 'metabnn.{key}' is missing") from None
    except ValueError as e:
        raise FormatError(f"metadata 'metabnn.{key}' is not valid JSON: {e}") from None


def _all_ints(a: np.ndarray, lo: int, hi: int) -> bool:
    """Every element a Python/NumPy integer (not bool) within [lo, hi]."""
    return all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and lo <= v <= hi for v in a.flat)


def _int_field(entry: dict, name: str, lo: int, hi: int, where: str) -> int:
    v = entry.get(name)
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        raise FormatError(f"{where}: field {name} = {v!r} is not an integer in {lo}..{hi}")
    return v


def _float_field(entry: dict, name: str, positive: bool, where: str) -> float:
    v = entry.get(name)
    if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v) or v < 0 or (positive and v == 0):
        raise FormatError(f"{where}: field {name} = {v!r} must be finite and {'> 0' if positive else '>= 0'}")
    return float(np.float32(v))


def _tensor(inits: dict, name: str, dtype, shape: tuple, lo: int, hi: int) -> np.ndarray:
    from onnx import numpy_helper

    if name not in inits:
        raise FormatError(f"initializer {name!r} is missing")
    try:
        a = numpy_helper.to_array(inits[name])
    except Exception as e:
        raise FormatError(f"initializer {name!r} cannot be decoded: {e}") from None
    if a.dtype != np.dtype(dtype) or a.shape != shape:
        raise FormatError(f"initializer {name!r}: {a.dtype}{list(a.shape)}, expected {np.dtype(dtype)}{list(shape)}")
    if a.dtype != np.bool_ and a.size and (a.min() < lo or a.max() > hi):
        raise FormatError(f"initializer {name!r}: values outside {lo}..{hi}")
    return a


def _bank_list(entry: dict, name: str, shape: tuple, lo: int, hi: int, where: str) -> np.ndarray:
    a = np.asarray(entry.get(name), dtype=object)
    if a.shape != shape or not _all_ints(a, lo, hi):
        raise FormatError(f"{where}: {name} must be {list(shape)} integers in {lo}..{hi}")
    return a.astype(np.int32)


def _layer(l: int, entry, inits: dict) -> Layer:
    where = f"layer {l}"
    if not isinstance(entry, dict):
        raise FormatError(f"{where}: metadata entry is not an object")
    K = _int_field(entry, "K", 1, 65536, where)
    N = _int_field(entry, "N", 1, 65536, where)
    in_kind = _int_field(entry, "in_kind", PIXELS, BITS, where)
    out_kind = _int_field(entry, "out_kind", SIGN, SCORES, where)
    bits = _int_field(entry, "bits", 2, 16, where)
    table_bits = _int_field(entry, "table_bits", 0, min(bits - 1, 12), where)
    score_frac = _int_field(entry, "score_frac", *((4, 40) if out_kind == SCORES else (0, 0)), where)
    conv = _conv_field(entry, where)
    p = f"l{l}."
    M_all = inits.get(p + "M")
    B = M_all.dims[0] if M_all is not None and len(M_all.dims) == 2 else 0
    if not 1 <= B <= 255:
        raise FormatError(f"{where}: initializer {p}M must be [B, N] with 1 <= B <= 255")
    R = K * (255 if in_kind == PIXELS else 1)
    D = 512 * R
    hmin, hmax = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    hidden = _tensor(inits, p + "hidden", np.int8 if bits <= 8 else np.int16, (N, K), hmin, hmax).astype(np.int16)
    table = _bank_list(entry, "table", (1 << table_bits,), 0, 32768, where).astype(np.uint16)
    lay = Layer(K=K, N=N, in_kind=in_kind, out_kind=out_kind, bits=bits, table_bits=table_bits,
                lr_shift=_int_field(entry, "lr_shift", 0, 31, where), bshift=_int_field(entry, "bshift", 0, 31, where),
                adapt_shift=_int_field(entry, "adapt_shift", 0, 24, where), score_frac=score_frac,
                meta=_float_field(entry, "meta", False, where), scale=_float_field(entry, "scale", True, where),
                signs=pack_bits(hidden >= 0), hidden=hidden, table=table,
                M=_tensor(inits, p + "M", np.int32, (B, N), -256 * R, 256 * R), conv=conv)
    if out_kind == SIGN:
        lay.C = _tensor(inits, p + "C", np.int32, (B, N), -D - 1, D + 1)
        lay.flip = _tensor(inits, p + "flip", np.bool_, (B, N), 0, 1).astype(np.int32)
        lay.lo = _bank_list(entry, "lo", (B, N), -D - 1, D + 1, where)
        lay.hi = _bank_list(entry, "hi", (B, N), -D - 1, D + 1, where)
    else:
        lay.g = _tensor(inits, p + "g", np.int32, (B, N), -32767, 32767)
        lay.b = _tensor(inits, p + "b", np.int64, (B, N), -(1 << 47), 1 << 47)
    return lay


def _conv_field(entry: dict, where: str) -> ConvGeom | None:
    """A conv layer's geometry from its metadata entry (None when the entry has none: a dense layer). Only the
    types here: the ranges and the map chain are the .mbnn reader's (_mbnn_accepts)."""
    if "conv" not in entry:
        return None
    v = entry["conv"]
    if not (isinstance(v, list) and len(v) == len(CONV_FIELDS)
            and all(isinstance(x, int) and not isinstance(x, bool) and 0 <= x <= 65535 for x in v)):
        raise FormatError(f"{where}: conv must be {len(CONV_FIELDS)} integers in 0..65535 ({', '.join(CONV_FIELDS)})")
    if v[3] < 1 or v[4] < 1:
        raise FormatError(f"{where}: conv kernel {v[3]} and stride {v[4]} must be at least 1")
    return ConvGeom(*v)


def _mbnn_accepts(model: Model) -> None:
    """The .mbnn reader is the one authority on FORMAT.md section 6: what it rejects, we reject."""
    from metabnn.export import mbnn

    try:
        mbnn.from_bytes(mbnn.to_bytes(model))
    except FormatError as e:
        raise FormatError(f"the model in the file breaks docs/FORMAT.md: {e}") from None


def _check_chain(layers: list) -> None:
    """FORMAT.md section 3: pixels in, sign layers, one scores layer last, K_{l+1} = N_l, equal banks."""
    for l, lay in enumerate(layers):
        want_in = PIXELS if l == 0 else BITS
        want_out = SCORES if l == len(layers) - 1 else SIGN
        if (lay.in_kind, lay.out_kind) != (want_in, want_out):
            raise FormatError(f"layer {l}: kinds ({lay.in_kind}, {lay.out_kind}) do not fit its place in the chain")
        if l == 0 and lay.K > 16384:
            raise FormatError(f"layer 0: K = {lay.K} pixels, at most 16384")
        if l > 0 and lay.conv is None and lay.K != layers[l - 1].out_size:
            raise FormatError(f"layer {l}: K = {lay.K} but layer {l - 1} writes {layers[l - 1].out_size} values")
        if lay.n_banks != layers[0].n_banks:
            raise FormatError(f"layer {l}: {lay.n_banks} banks, layer 0 has {layers[0].n_banks}")
