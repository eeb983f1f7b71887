"""The firmware on a microcontroller: the Cortex-M4 image of firmware/cortex-m/ on QEMU's MPS2
AN386 board, bit for bit against the golden model.

`make -C firmware cortex-m` cross-compiles the library and the board program with
-Wall -Wextra -Werror, embedding a model (the session's trained MNIST model, or a random one)
and a few test images; QEMU runs it with semihosting for output and exit status. Checked:
the int64 scores and labels of every image (inference from the read-only flash image), and
for every learning step the predicted label, the flip count and the CRC-32 of the whole
learnable state, plus the final state byte for byte. Skips, naming what is missing, when the
Arm toolchain or QEMU is not installed.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zlib

import numpy as np
import pytest

from metabnn.export.mbnn import from_bytes, to_bytes
from metabnn.sim import forward, learn_step, random_model
from metabnn.backends.c import FIRMWARE

QEMU = "qemu-system-arm"
CC = "arm-none-eabi-gcc"
QEMU_FLAGS = ["-M", "mps2-an386", "-display", "none", "-serial", "none", "-monitor", "none",
              "-chardev", "stdio,id=semihost", "-semihosting-config", "enable=on,target=native,chardev=semihost",
              "-icount", "shift=0"]
INSNS_PER_TICK = 40  # -icount shift=0: 1 instruction per ns; SysTick on the 25 MHz core clock


def _missing_tools() -> str:
    missing = [t for t in ("make", CC, QEMU) if shutil.which(t) is None]
    if not missing:
        specs = subprocess.run([CC, "-print-file-name=nano.specs"], capture_output=True, text=True).stdout.strip()
        if specs == "nano.specs":  # the driver echoes the bare name when newlib is absent
            missing.append("libnewlib-arm-none-eabi")
        elif "mps2-an386" not in subprocess.run([QEMU, "-machine", "help"], capture_output=True, text=True).stdout:
            missing.append(f"the mps2-an386 machine in {QEMU}")
    return ", ".join(missing)


@pytest.fixture(scope="module")
def tools():
    missing = _missing_tools()
    if missing:
        pytest.skip(f"Cortex-M test needs {missing} (apt-get install gcc-arm-none-eabi "
                    "libnewlib-arm-none-eabi qemu-system-arm)")


def build_and_run(out, model_bytes: bytes, images: np.ndarray, labels: np.ndarray, steps: int,
                  adapt: bool = False, extra_cflags: str = "") -> subprocess.CompletedProcess:
    """Build the board image for this model and these cases in OUT and run it under QEMU."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "model.mbnn").write_bytes(model_bytes)
    np.savez(out / "cases.npz", images=images, labels=labels)
    make = subprocess.run(["make", "-s", "-C", str(FIRMWARE), "cortex-m", f"CM_OUT={out / 'build'}",
                           f"CM_MODEL={out / 'model.mbnn'}", f"CM_CASES={out / 'cases.npz'}", f"CM_STEPS={steps}",
                           f"CM_ADAPT={'1' if adapt else ''}",
                           f"CM_EXTRA_CFLAGS={extra_cflags}", f"PYTHON={sys.executable}"],
                          capture_output=True, text=True)
    assert make.returncode == 0, f"make cortex-m failed:\n{make.stdout}{make.stderr}"
    elf = out / "build" / "metabnn_board.elf"
    return subprocess.run([QEMU, *QEMU_FLAGS, "-kernel", str(elf)], capture_output=True, text=True, timeout=120)


def parse(stdout: str) -> dict:
    """The board's "key value..." lines: calib, ram, infer (per image), learn (per step), state."""
    r = {"infer": [], "learn": [], "state": ""}
    for line in stdout.splitlines():
        key, _, rest = line.partition(" ")
        f = rest.split()
        if key == "calib":
            r["calib"] = (int(f[1]), int(f[3]))
        elif key == "ram":
            r["ram"] = {f[i]: int(f[i + 1]) for i in range(0, len(f), 2)}
        elif key == "infer":
            r["infer"].append({"label": int(f[2]), "ticks": int(f[4]), "scores": [int(v) for v in f[6:]]})
        elif key == "learn":
            r["learn"].append({"label": int(f[2]), "predicted": int(f[4]), "flips": int(f[6]),
                               "ticks": int(f[8]), "crc": int(f[10], 16)})
        elif key == "state":
            r["state"] += rest
        elif key in ("stack_infer", "stack_learn", "learn_adapt"):
            r[key] = int(f[0])
        elif key == "done":
            r["done"] = True
    return r


def check_against_golden(model, images, labels, steps, adapt, run) -> dict:
    assert run.returncode == 0, f"board exited {run.returncode}:\n{run.stdout[-2000:]}\n{run.stderr[-2000:]}"
    r = parse(run.stdout)
    assert r.get("done"), run.stdout[-2000:]

    # Inference from the read-only image: every score, then the label (lowest index wins ties).
    want = forward(model, images)
    assert len(r["infer"]) == len(images)
    for i, got in enumerate(r["infer"]):
        assert got["scores"] == want[i].tolist(), f"image {i}"
        assert got["label"] == int(np.argmax(want[i]))

    # Learning: the same steps in the golden model; the board's CRC covers every byte of the state
    # (hidden weights, sign bits, and the means M that stream adaptation moves).
    assert r["learn_adapt"] == int(adapt)
    golden = model
    assert len(r["learn"]) == steps
    for k, got in enumerate(r["learn"]):
        i = k % len(images)
        golden, info = learn_step(golden, images[i], int(labels[i]), adapt=adapt)
        assert (got["label"], got["predicted"], got["flips"]) == (int(labels[i]), info.predicted, sum(info.flips)), \
            f"step {k}"
        golden_bytes = to_bytes(golden)
        assert got["crc"] == zlib.crc32(golden_bytes[:-4]), f"state after step {k} differs from the golden model"
    final = bytes.fromhex(r["state"])
    assert final == to_bytes(golden)
    from_bytes(final)  # and the learned image is still a valid .mbnn file

    # The instruction-count method: 200,000 instructions of the calibration loop = 5,000 ticks.
    insns, ticks = r["calib"]
    assert abs(ticks * INSNS_PER_TICK - insns) <= INSNS_PER_TICK
    return r


def test_trained_model_on_cortex_m4(tools, trained_model, mnist, tmp_path):
    """The session's trained 784-128-128-10 MNIST model, 4 MNIST test images, 8 learning steps with
    stream-adaptive normalization (the trained model has adapt_shift > 0)."""
    images = np.asarray(mnist.test_x[:4], dtype=np.uint8)
    labels = np.asarray(mnist.test_y[:4], dtype=np.int64)
    data = to_bytes(trained_model)
    assert any(layer.adapt_shift > 0 for layer in trained_model.layers)
    run = build_and_run(tmp_path, data, images, labels, steps=8, adapt=True)
    r = check_against_golden(trained_model, images, labels, 8, True, run)
    # The read-only inference needs only the workspace (and stack); learning the whole image.
    assert r["ram"]["ws_infer"] < r["ram"]["ws_learn"] < 16384


def test_wide_hidden_random_model_on_cortex_m4(tools, tmp_path):
    """int16 hidden weights (b = 12), K not a multiple of 32, two hidden layers, a big step size."""
    model = random_model((200, 45, 33, 7), bits=12, table_bits=6, lr_shift=2, bshift=1, seed=5)
    rng = np.random.default_rng(5)
    images = rng.integers(0, 256, size=(3, 200), dtype=np.uint8)
    labels = rng.integers(0, 7, size=3)
    run = build_and_run(tmp_path, to_bytes(model), images, labels, steps=5)
    check_against_golden(model, images, labels, 5, False, run)


def test_stochastic_rounding_on_cortex_m4(tools, tmp_path):
    """Stochastic rounding (FORMAT.md 4.4) on the 32-bit core: 4-bit hidden weights, the step counter
    crossing the u32 wrap; every state's CRC and the final image (sr_step included) equal golden."""
    model = random_model((120, 40, 10), bits=4, table_bits=3, lr_shift=4, bshift=1, seed=8, rounding=1,
                         sr_step=0xFFFFFFFE)
    rng = np.random.default_rng(8)
    images = rng.integers(0, 256, size=(3, 120), dtype=np.uint8)
    labels = rng.integers(0, 10, size=3)
    run = build_and_run(tmp_path, to_bytes(model), images, labels, steps=5)
    check_against_golden(model, images, labels, 5, False, run)
    assert from_bytes(bytes.fromhex(parse(run.stdout)["state"])).layers[0].sr_step == 3


def test_library_error_gives_message_and_exit_status(tools, tmp_path):
    """A workspace too small for the model: the library's status reaches the host as a line and exit 1."""
    model = random_model((64, 32, 10), seed=1)
    images = np.zeros((1, 64), dtype=np.uint8)
    run = build_and_run(tmp_path, to_bytes(model), images, np.zeros(1, dtype=np.int64), steps=1,
                        extra_cflags="-DBOARD_WS_BYTES=64")
    assert run.returncode == 1
    assert "error forward" in run.stdout
