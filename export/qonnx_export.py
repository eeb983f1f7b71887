"""A QONNX-annotated variant of the ONNX export, for FINN users.

FINN streamlines a binarized network written as MatMul on BipolarQuant weights followed by
MultiThreshold activations (domain `qonnx.custom_op.general`). This file writes the integer model
that way, with one normalization bank frozen in:

    W      = BipolarQuant(hidden, scale=1)                      +-1 (h >= 0 -> +1), FORMAT.md 4.1
    acc    = MatMul(x, W)                                       float32 holding exact integers (< 2^24)
    SIGN   : x' = MultiThreshold(acc * s, T, out_scale=2, out_bias=-1)        +-1, "BIPOLAR"
    SCORES : scores = g * (Cast<int64>(acc) * 256 - M) + b;  label = ArgMax   int64, as in onnx_export

The SIGN fold: (acc*256 - M >= C) XOR f. With t = ceil((C + M) / 256), acc >= t when f = 0;
when f = 1 the output is acc < t, i.e. -acc >= 1 - t, so the neuron's accumulator is negated
(s = -1) and its threshold is 1 - t. MultiThreshold only knows ">=", hence the sign flip.

A conv net (FORMAT.md 3.3, version 2) is written the way FINN takes a binarized CNN (its Brevitas/QONNX
import): the images reshaped to [batch, C, H, W]; per conv layer Conv on BipolarQuant weights [N, C, k, k]
(the rows' synapse (ky k + kx) C + c reshaped and transposed, as onnx_export does) with zero padding (a 0 tap
contributes nothing: FORMAT.md's rule for taps off the map, on pixels and on +-1 maps alike), the per-channel
MultiThreshold on the NCHW accumulators ([N, 1] thresholds, the sign flip a [N, 1, 1] Mul), MaxPool 2 x 2 stride 2
on the +-1 map (the OR of the +1 bits; an odd last row or column dropped), and Flatten(axis=1) in NCHW order
before the first dense layer.

The pixels enter as float32 annotated UINT8. onnxruntime cannot run the custom ops; qonnx's
`execute_onnx` can, and FINN compiles it. The learning state (tables, windows, other banks) is not
in this file: use the plain `.onnx` (onnx_export) or the `.mbnn` to go on learning.
"""

from __future__ import annotations

import numpy as np

from metabnn.errors import UsageError
from metabnn.fileio import atomic_write_bytes
from metabnn.sim.model import SIGN, Layer, Model

QONNX_DOMAIN = "qonnx.custom_op.general"
OPSET = 21


def sign_thresholds(layer: Layer, bank: int) -> tuple[np.ndarray, np.ndarray]:
    """(s, T), both int64 [N]: the SIGN layer's output is +1 exactly when s * acc >= T."""
    t = -((-(layer.C[bank].astype(np.int64) + layer.M[bank].astype(np.int64))) // 256)  # ceil((C+M)/256)
    flip = layer.flip[bank] != 0
    return np.where(flip, -1, 1).astype(np.int64), np.where(flip, 1 - t, t)


def to_qonnx(model: Model, bank: int = 0, batch: int = 1):
    """The QONNX ModelProto of `model` with bank `bank` frozen in (see the module docstring).

    The batch size is fixed (FINN streams batch 1): qonnx's `execute_onnx` (1.0) compares every input's
    shape with the graph's, so a symbolic batch dimension cannot be executed there."""
    from onnx import StringStringEntryProto, TensorAnnotation, TensorProto, helper, numpy_helper

    if not isinstance(bank, (int, np.integer)) or not 0 <= int(bank) < model.n_banks:
        raise UsageError(f"bank {bank} out of range: the model has {model.n_banks} bank(s)")
    bank = int(bank)
    if not isinstance(batch, (int, np.integer)) or batch < 1:
        raise UsageError(f"batch {batch}: must be an integer >= 1")
    nodes, inits, annotations = [], [], []

    def const(name, value):
        inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def node(op, inputs, output, domain="", **attrs):
        nodes.append(helper.make_node(op, inputs, [output], name=output, domain=domain, **attrs))
        return output

    def annotate(tensor, finn_datatype):
        annotations.append(TensorAnnotation(tensor_name=tensor, quant_parameter_tensor_names=[
            StringStringEntryProto(key="finn_datatype", value=finn_datatype)]))

    annotate("images", "UINT8")
    const("one_f32", np.float32(1.0))
    const("q8_i64", np.int64(256))
    x = "images"
    for l, lay in enumerate(model.layers):
        p = f"l{l}."
        g = lay.conv
        # hidden weights as float32 (exact: |h| < 2^15); BipolarQuant keeps their sign. Dense: [K, N] for x @ W;
        # conv: ONNX's [N, C, k, k] from the rows [N, K], synapse (ky k + kx) C + c
        if g is None:
            hidden = lay.hidden.T
        else:
            hidden = lay.hidden.reshape(lay.N, g.kernel, g.kernel, g.in_c).transpose(0, 3, 1, 2)
        h = const(p + ("hidden_kn" if g is None else "hidden_nckk"), np.ascontiguousarray(hidden.astype(np.float32)))
        annotate(h, f"INT{lay.bits}")
        w = node("BipolarQuant", [h, "one_f32"], p + "weight_pm1", domain=QONNX_DOMAIN)
        annotate(w, "BIPOLAR")
        if g is None:
            if l > 0 and model.layers[l - 1].conv is not None:  # the map as a vector, NCHW (FORMAT.md 3.3)
                x = node("Flatten", [x], p + "flat", axis=1)
            acc = node("MatMul", [x, w], p + "acc")
            channel_shape = (-1,)
        else:
            if l == 0:  # the images' C H W pixels, in CHW order, as the map
                x = node("Reshape", [x, const(p + "map_shape", np.asarray([batch, g.in_c, g.in_h, g.in_w],
                                                                          dtype=np.int64))], p + "map")
            acc = node("Conv", [x, w], p + "acc", kernel_shape=[g.kernel, g.kernel], strides=[g.stride, g.stride],
                       pads=[g.pad] * 4)
            channel_shape = (-1, 1, 1)  # per output channel, broadcast over the positions (NCHW)
        if lay.out_kind == SIGN:
            s, t = sign_thresholds(lay, bank)
            signed = node("Mul", [acc, const(p + "acc_sign", s.astype(np.float32).reshape(channel_shape))],
                          p + "acc_signed")
            x = node("MultiThreshold", [signed, const(p + "thresholds", t.astype(np.float32).reshape(-1, 1))],
                     p + "out_pm1", domain=QONNX_DOMAIN, out_dtype="BIPOLAR", out_scale=2.0, out_bias=-1.0)
            annotate(x, "BIPOLAR")
            if g is not None and g.pool:
                x = node("MaxPool", [x], p + "pool", kernel_shape=[2, 2], strides=[2, 2])
                annotate(x, "BIPOLAR")
        else:
            acc256 = node("Mul", [node("Cast", [acc], p + "acc_i64", to=TensorProto.INT64), "q8_i64"], p + "acc_q8")
            d = node("Sub", [acc256, const(p + "M", lay.M[bank].astype(np.int64))], p + "d")
            gd = node("Mul", [const(p + "g", lay.g[bank].astype(np.int64)), d], p + "gd")
            node("Add", [gd, const(p + "b", lay.b[bank].astype(np.int64))], "scores")
            node("ArgMax", ["scores"], "label", axis=1, keepdims=0, select_last_index=0)

    graph = helper.make_graph(
        nodes, "metabnn_qonnx_bnn",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [batch, model.input_size])],
        [helper.make_tensor_value_info("label", TensorProto.INT64, [batch]),
         helper.make_tensor_value_info("scores", TensorProto.INT64, [batch, model.n_classes])],
        inits)
    graph.quantization_annotation.extend(annotations)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET),
                                                    helper.make_opsetid(QONNX_DOMAIN, 1)],
                              ir_version=10, producer_name="metabnn")
    helper.set_model_props(proto, {"metabnn.format_version": "2" if model.has_conv else "1", "metabnn.bank": str(bank),
                                   "metabnn.variant": "qonnx"})
    return proto


def save_qonnx(model: Model, path, bank: int = 0, batch: int = 1) -> None:
    atomic_write_bytes(path, to_qonnx(model, bank, batch).SerializeToString())
