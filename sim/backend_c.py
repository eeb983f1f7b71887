"""The C firmware as a `metabnn verify` backend (ctypes over firmware/build/libmetabnn.so).

The firmware loads the exact `.mbnn` bytes the exporter wrote (its own validating loader),
so every comparison also exercises the C loader. Learning and adaptation mutate the image in
place; after each step the image is re-sealed (CRC rewritten), so the state the C code
holds can be compared byte for byte with `metabnn.export.mbnn.to_bytes(golden_model)` or
decoded with `from_bytes` to compare every hidden weight, sign bit and M.

    backend = CBackend()
    ok, reason = backend.available()
    labels = backend.predict(mbnn_bytes, images, bank=0, adapt=False)
    states = backend.learn(mbnn_bytes, images, labels, steps, bank=0, adapt=False)  # list of bytes
"""

from __future__ import annotations

import ctypes
import shutil
import subprocess
from pathlib import Path

import numpy as np

from metabnn.errors import MetabnnError

FIRMWARE = Path(__file__).resolve().parent.parent / "firmware"
LIB_NAME = "libmetabnn.so"
MODE_INFER, MODE_LEARN = 0, 1


class FirmwareError(MetabnnError):
    """The C library returned an error status (message: the status name)."""


class _StepInfo(ctypes.Structure):
    _fields_ = [("predicted", ctypes.c_uint32), ("flips", ctypes.c_uint32)]


def _stale(lib: Path) -> bool:
    if not lib.exists():
        return True
    t = lib.stat().st_mtime
    sources = list((FIRMWARE / "src").glob("*.[ch]")) + [FIRMWARE / "include" / "metabnn.h", FIRMWARE / "Makefile"]
    return any(s.stat().st_mtime > t for s in sources if s.exists())


def build_firmware(target: str = "all") -> tuple[bool, str]:
    """`make -C firmware TARGET`; (ok, message)."""
    if shutil.which("make") is None or shutil.which("gcc") is None:
        return False, "make and gcc are needed to build firmware/ (apt-get install build-essential)"
    r = subprocess.run(["make", "-s", "-C", str(FIRMWARE), target], capture_output=True, text=True)
    if r.returncode != 0:
        return False, f"make -C firmware {target} failed:\n{r.stdout}{r.stderr}"
    return True, ""


class _Aligned:
    """A writable, 8-byte aligned copy of some bytes (what the C loader requires)."""

    def __init__(self, data: bytes):
        self.size = len(data)
        self.buf = (ctypes.c_uint64 * ((self.size + 7) // 8 or 1))()
        ctypes.memmove(self.buf, data, self.size)

    def bytes(self) -> bytes:
        return ctypes.string_at(self.buf, self.size)


class CBackend:
    name = "c"

    def __init__(self, lib_path: str | Path | None = None, build: bool = True):
        self.lib_path = Path(lib_path) if lib_path else FIRMWARE / "build" / LIB_NAME
        self._build = build and lib_path is None
        self._lib = None
        self._reason = ""

    # ------------------------------------------------------------------ set-up
    def available(self) -> tuple[bool, str]:
        if self._lib is not None:
            return True, ""
        if self._build and _stale(self.lib_path):
            ok, msg = build_firmware()
            if not ok:
                return False, msg
        if not self.lib_path.exists():
            return False, f"{self.lib_path} not found (run: make -C firmware)"
        try:
            self._lib = self._bind(ctypes.CDLL(str(self.lib_path)))
        except OSError as e:
            return False, f"cannot load {self.lib_path}: {e}"
        return True, ""

    @property
    def lib(self):
        ok, reason = self.available()
        if not ok:
            raise MetabnnError(f"C backend unavailable: {reason}")
        return self._lib

    @staticmethod
    def _bind(lib):
        P, U32, SZ, I = ctypes.c_void_p, ctypes.c_uint32, ctypes.c_size_t, ctypes.c_int
        sig = {
            "mbnn_status_str": ([I], ctypes.c_char_p),
            "mbnn_model_struct_size": ([], SZ),
            "mbnn_load": ([P, P, SZ], I),
            "mbnn_load_writable": ([P, P, SZ], I),
            "mbnn_image_seal": ([P], I),
            "mbnn_select_bank": ([P, U32], I),
            "mbnn_set_adapt": ([P, I], I),
            "mbnn_set_shifts": ([P, U32, U32, U32], I),
            "mbnn_workspace_size": ([P, I, ctypes.POINTER(SZ)], I),
            "mbnn_forward": ([P, P, SZ, P, SZ, P, SZ], I),
            "mbnn_predict": ([P, P, SZ, P, SZ, ctypes.POINTER(U32)], I),
            "mbnn_learn_step": ([P, P, SZ, U32, P, SZ, ctypes.POINTER(_StepInfo)], I),
            "mbnn_crc32": ([U32, P, SZ], U32),
            "mbnn_xor_popcount": ([P, P, U32], U32),
            "mbnn_xor_popcount_portable": ([P, P, U32], U32),
            "mbnn_and_popcount": ([P, P, U32], U32),
            "mbnn_and_popcount_portable": ([P, P, U32], U32),
        }
        for name, (args, res) in sig.items():
            f = getattr(lib, name)
            f.argtypes, f.restype = args, res
        return lib

    def status_str(self, status: int) -> str:
        return self.lib.mbnn_status_str(status).decode()

    def _check(self, status: int, what: str) -> None:
        if status != 0:
            raise FirmwareError(f"C firmware: {what}: {self.status_str(status)} (status {status})")

    # ------------------------------------------------------------------ sessions
    def open(self, mbnn_bytes: bytes, bank: int = 0, adapt: bool = False, writable: bool = True) -> "Session":
        return Session(self, mbnn_bytes, bank, adapt, writable)

    def load_status(self, mbnn_bytes: bytes) -> int:
        """The loader's status for an image (0 = accepted); never raises on bad bytes."""
        img = _Aligned(bytes(mbnn_bytes))
        model = ctypes.create_string_buffer(self.lib.mbnn_model_struct_size())
        return int(self.lib.mbnn_load_writable(model, img.buf, img.size))

    # ------------------------------------------------------------------ verify API
    def predict(self, mbnn_bytes: bytes, images, bank: int = 0, adapt: bool = False) -> np.ndarray:
        with self.open(mbnn_bytes, bank, adapt) as s:
            return s.predict(images)

    def scores(self, mbnn_bytes: bytes, images, bank: int = 0, adapt: bool = False) -> np.ndarray:
        with self.open(mbnn_bytes, bank, adapt) as s:
            return s.forward(images)

    def learn(self, mbnn_bytes: bytes, images, labels, steps: int | None = None, bank: int = 0,
              adapt: bool = False) -> list[bytes]:
        """The sealed .mbnn image after each of `steps` learning steps (sample s % n)."""
        images = np.asarray(images, dtype=np.uint8)
        labels = np.asarray(labels)
        steps = len(images) if steps is None else int(steps)
        out = []
        with self.open(mbnn_bytes, bank, adapt) as s:
            for t in range(steps):
                s.learn_step(images[t % len(images)], int(labels[t % len(labels)]))
                out.append(s.image())
        return out


class Session:
    """One loaded model in C memory (writable image + workspace)."""

    def __init__(self, backend: CBackend, mbnn_bytes: bytes, bank: int, adapt: bool, writable: bool):
        lib = backend.lib
        self.b, self.lib = backend, lib
        self.img = _Aligned(bytes(mbnn_bytes))
        self.model = ctypes.create_string_buffer(lib.mbnn_model_struct_size())
        load = lib.mbnn_load_writable if writable else lib.mbnn_load
        backend._check(load(self.model, self.img.buf, self.img.size), "load")
        backend._check(lib.mbnn_select_bank(self.model, int(bank)), f"bank {bank}")
        backend._check(lib.mbnn_set_adapt(self.model, int(bool(adapt))), "adapt")
        size = ctypes.c_size_t()
        backend._check(lib.mbnn_workspace_size(self.model, MODE_LEARN if writable else MODE_INFER,
                                               ctypes.byref(size)), "workspace size")
        self.ws_size = size.value
        self.ws = (ctypes.c_uint64 * (self.ws_size // 8 + 1))()
        # layer 0's K and the class count, from the image's descriptors
        hdr = np.frombuffer(mbnn_bytes, dtype="<u4", count=6)
        L = int(np.frombuffer(mbnn_bytes, dtype="<u2", count=4)[3])
        self.K = int(np.frombuffer(mbnn_bytes, dtype="<u4", count=1, offset=24)[0])
        self.n_classes = int(np.frombuffer(mbnn_bytes, dtype="<u4", count=1, offset=24 + 64 * (L - 1) + 4)[0])
        del hdr

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def _images(self, images) -> np.ndarray:
        x = np.ascontiguousarray(np.asarray(images, dtype=np.uint8))
        if x.ndim == 1:
            x = x.reshape(1, -1)
        if x.ndim != 2 or x.shape[1] != self.K:
            raise MetabnnError(f"expected images of shape [n, {self.K}], got {tuple(np.shape(images))}")
        return x

    def predict(self, images) -> np.ndarray:
        x = self._images(images)
        out = np.empty(len(x), dtype=np.int64)
        label = ctypes.c_uint32()
        for n in range(len(x)):
            self.b._check(self.lib.mbnn_predict(self.model, x[n].ctypes.data, self.K, self.ws, self.ws_size,
                                                ctypes.byref(label)), "predict")
            out[n] = label.value
        return out

    def forward(self, images) -> np.ndarray:
        x = self._images(images)
        out = np.empty((len(x), self.n_classes), dtype=np.int64)
        for n in range(len(x)):
            self.b._check(self.lib.mbnn_forward(self.model, x[n].ctypes.data, self.K, self.ws, self.ws_size,
                                                out[n].ctypes.data, self.n_classes), "forward")
        return out

    def learn_step(self, image, label: int) -> tuple[int, int]:
        """(predicted, flips) of one step."""
        x = self._images(image)[0]
        info = _StepInfo()
        self.b._check(self.lib.mbnn_learn_step(self.model, x.ctypes.data, self.K, int(label), self.ws,
                                               self.ws_size, ctypes.byref(info)), "learn step")
        return int(info.predicted), int(info.flips)

    def set_shifts(self, layer: int, lr_shift: int, bshift: int) -> None:
        self.b._check(self.lib.mbnn_set_shifts(self.model, layer, lr_shift, bshift), "set shifts")

    def image(self) -> bytes:
        """The current state as a sealed .mbnn image."""
        self.b._check(self.lib.mbnn_image_seal(self.model), "seal")
        return self.img.bytes()


def write_mbds(path, train_x, train_y, test_x, test_y, perm) -> None:
    """The data file of firmware/demo/mbnn_demo.c: task A's images and labels plus the pixel
    permutation that makes task B (B pixel i = A pixel perm[i])."""
    train_x, test_x = np.asarray(train_x, np.uint8), np.asarray(test_x, np.uint8)
    K = train_x.shape[1]
    perm = np.asarray(perm, "<u4")
    if test_x.shape[1] != K or perm.shape != (K,) or sorted(perm.tolist()) != list(range(K)):
        raise MetabnnError("write_mbds: images must share K and perm must be a permutation of range(K)")
    if np.max(train_y, initial=0) > 255 or np.max(test_y, initial=0) > 255:
        raise MetabnnError("write_mbds: labels must fit a byte")
    head = b"MBDS" + np.asarray([K, len(train_x), len(test_x)], "<u4").tobytes()
    with open(path, "wb") as f:
        for part in (head, train_x.tobytes(), np.asarray(train_y, np.uint8).tobytes(), test_x.tobytes(),
                     np.asarray(test_y, np.uint8).tobytes(), perm.tobytes()):
            f.write(part)
