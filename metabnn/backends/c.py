"""The C firmware as a backend (ctypes over libmetabnn.so, built into the per-user cache).

Two layers:
  CFirmware   the library itself: loads the exact `.mbnn` bytes the exporter wrote (its own validating loader,
              so every comparison also exercises the C loader), sessions, status strings; used by the firmware
              tests and benchmarks on raw images.
  CBackend    the registry's `c` backend: the protocol of metabnn.backends on metabnn.sim.Model objects.

Learning and adaptation mutate the image in place; after each step the image is re-sealed (CRC rewritten), so the
state the C code holds is decoded with `metabnn.export.mbnn.from_bytes` to compare every hidden weight, sign bit
and M with the golden model.

    fw = CFirmware()                                   # builds (or reuses) the cached library
    labels = fw.predict(mbnn_bytes, images, bank=0, adapt=False)
    images_after = fw.learn(mbnn_bytes, images, labels, steps)   # list of sealed .mbnn images
"""

from __future__ import annotations

import ctypes
import fcntl
import platform
import shutil
import subprocess
from pathlib import Path

import numpy as np

from metabnn.backends.cache import build_key, cached_build
from metabnn.backends.sources import source_root
from metabnn.errors import MetabnnError
from metabnn.export.mbnn import from_bytes, to_bytes
from metabnn.fileio import atomic_write_with

LIB_NAME = "libmetabnn.so"
FIRMWARE = source_root("firmware")  # the sources (the tests and benchmarks build their tools in FIRMWARE/build)
MODE_INFER, MODE_LEARN = 0, 1


class FirmwareError(MetabnnError):
    """The C library returned an error status (message: the status name)."""


class _StepInfo(ctypes.Structure):
    _fields_ = [("predicted", ctypes.c_uint32), ("flips", ctypes.c_uint32)]


def build_firmware(target: str = "all", build_dir: Path | None = None) -> tuple[bool, str]:
    """`make -C firmware [BUILD=build_dir] TARGET`; (ok, message). The tests build the tools in the checkout's
    firmware/build; the backend builds only the shared object, into the cache (`cached_library`)."""
    src = FIRMWARE
    if src is None:
        return False, "the firmware sources are missing from this installation (reinstall metabnn)"
    if shutil.which("make") is None or shutil.which("gcc") is None:
        return False, "make and gcc are needed to build the C firmware (as root: apt-get install build-essential)"
    cmd = ["make", "-s", "-C", str(src)] + ([f"BUILD={build_dir}"] if build_dir else []) + [target]
    out = Path(build_dir) if build_dir else src / "build"
    try:
        out.mkdir(parents=True, exist_ok=True)
        lock = open(out / ".make.lock", "w")
    except OSError as e:
        return False, f"cannot write the firmware build folder {out} ({e.strerror})"
    # one make per build folder at a time (pytest-xdist workers, two metabnn runs): two makes writing the same
    # objects, or relinking a library another process has loaded, would race; the second finds it built
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        tail = "\n".join((r.stdout + r.stderr).strip().splitlines()[-15:])
        return False, f"building the C firmware failed ({' '.join(cmd)}):\n{tail}"
    return True, ""


def _tool_versions() -> list[str]:
    """What the build depends on besides its sources: compiler and machine (HOST_ARCH is -march=native)."""
    cc = subprocess.run(["gcc", "--version"], capture_output=True, text=True).stdout.splitlines()[:1]
    flags = ""
    try:
        flags = next((l for l in Path("/proc/cpuinfo").read_text().splitlines() if l.startswith("flags")), "")
    except OSError:
        pass
    return cc + [platform.machine(), flags]


def cached_library() -> Path:
    """libmetabnn.so built from the firmware sources into the per-user cache (reused while nothing changed)."""
    src = FIRMWARE
    if src is None:
        raise MetabnnError("the firmware sources are missing from this installation (reinstall metabnn)")
    files = sorted(src.glob("src/*.[ch]")) + [src / "include" / "metabnn.h", src / "Makefile"]

    def build(out: Path) -> None:
        ok, msg = build_firmware(str(out / LIB_NAME), out)
        if not ok:
            raise MetabnnError(msg)

    return cached_build("c", build_key(files, _tool_versions()), build) / LIB_NAME


IMAGE_ALIGN = 64  # a cache line: the exporter puts every sign section at a 64-byte file offset (FORMAT.md 6)


class _Aligned:
    """A writable copy of some bytes starting on a 64-byte boundary. The C loader needs 4 (image) or 8
    (workspace); a cache line puts a file's sign rows on cache lines, the binary kernel's fast case."""

    def __init__(self, data: bytes):
        self.size = len(data)
        n = self.size or 1
        raw = (ctypes.c_uint8 * (n + IMAGE_ALIGN - 1))()
        # from_buffer keeps `raw` alive as long as the view
        self.buf = (ctypes.c_uint8 * n).from_buffer(raw, -ctypes.addressof(raw) % IMAGE_ALIGN)
        ctypes.memmove(self.buf, data, self.size)

    def bytes(self) -> bytes:
        return ctypes.string_at(self.buf, self.size)


class CFirmware:
    """The C library. lib_path: a library built elsewhere (the tests' firmware/build); default: the cache."""

    def __init__(self, lib_path: str | Path | None = None):
        self.lib_path = Path(lib_path) if lib_path else None
        self._lib = None

    # ------------------------------------------------------------------ set-up
    def available(self) -> tuple[bool, str]:
        if self._lib is not None:
            return True, ""
        if self.lib_path is None:
            try:
                self.lib_path = cached_library()
            except MetabnnError as e:
                return False, str(e)
        if not self.lib_path.exists():
            return False, f"{self.lib_path} not found"
        try:
            self._lib = self._bind(ctypes.CDLL(str(self.lib_path)))
        except OSError as e:
            return False, f"cannot load {self.lib_path}: {e}"
        return True, ""

    @property
    def lib(self):
        ok, reason = self.available()
        if not ok:
            raise MetabnnError(f"the C firmware cannot run: {reason}")
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
            "mbnn_set_frozen": ([P, U32], I),
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

    # ------------------------------------------------------------------ on raw .mbnn images
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

    def __init__(self, backend: CFirmware, mbnn_bytes: bytes, bank: int, adapt: bool, writable: bool):
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
        # input size and class count, from the container's own reader (the C loader accepted the bytes above)
        model = from_bytes(bytes(mbnn_bytes))
        self.K, self.n_classes = model.input_size, model.n_classes

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

    def set_frozen(self, layers) -> None:
        """The layers that do not learn in the steps that follow (FORMAT.md 4.5 "Frozen layers")."""
        mask = sum(1 << int(l) for l in set(layers))
        self.b._check(self.lib.mbnn_set_frozen(self.model, mask), f"freeze layers {sorted(set(layers))}")

    def image(self) -> bytes:
        """The current state as a sealed .mbnn image."""
        self.b._check(self.lib.mbnn_image_seal(self.model), "seal")
        return self.img.bytes()


class CBackend:
    """The registry's `c` backend: the firmware on metabnn.sim.Model objects."""

    name, integer, adapts = "c", True, True
    conv = True  # inference of conv models (docs/FIRMWARE.md)

    def __init__(self, lib_path: str | Path | None = None):
        self.firmware = CFirmware(lib_path)
        self._conv_learn = None

    @property
    def conv_learn(self) -> bool:
        """Whether this build's learning step takes a conv model (the first conv firmware, 1c18ae2, refused it
        with a status): found out once, by one step on a small random conv model."""
        if self._conv_learn is None:
            from metabnn.sim import random_conv_model

            m = random_conv_model()
            try:
                with self.firmware.open(to_bytes(m)) as s:
                    s.learn_step(np.zeros(m.input_size, np.uint8), 0)
                self._conv_learn = True
            except FirmwareError:
                self._conv_learn = False
        return self._conv_learn

    def available(self) -> tuple[bool, str]:
        return self.firmware.available()

    def predict(self, model, images, bank: int = 0, adapt: bool = False) -> np.ndarray:
        return self.firmware.predict(to_bytes(model), images, bank=bank, adapt=adapt)

    def learn(self, model, images, labels, bank: int = 0, adapt: bool = False, every: int = 1, frozen=()):
        """frozen: layers that do not learn (mbnn_set_frozen; the golden backend's `frozen`)."""
        n = len(labels)
        with self.firmware.open(to_bytes(model), bank=bank, adapt=adapt) as s:
            if frozen:
                s.set_frozen(frozen)
            for step, (x, y) in enumerate(zip(images, labels), start=1):
                s.learn_step(x, int(y))
                if step % every == 0 or step == n:
                    # the firmware hands back its whole sealed image: decode it with the container's reader
                    yield step, from_bytes(s.image())


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
    parts = (head, train_x.tobytes(), np.asarray(train_y, np.uint8).tobytes(), test_x.tobytes(),
             np.asarray(test_y, np.uint8).tobytes(), perm.tobytes())
    atomic_write_with(path, lambda f: [f.write(part) for part in parts])
