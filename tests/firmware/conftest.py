"""Fixtures for the C firmware tests: the library is built once per session with make."""

from __future__ import annotations

import shutil

import pytest

from metabnn.backends.c import FIRMWARE, LIB_NAME, CFirmware, build_firmware


@pytest.fixture(scope="session")
def cbackend() -> CFirmware:
    if shutil.which("gcc") is None or shutil.which("make") is None:
        pytest.skip("gcc and make are needed to build firmware/")
    ok, msg = build_firmware("all")
    assert ok, msg
    backend = CFirmware(lib_path=FIRMWARE / "build" / LIB_NAME)
    ok, reason = backend.available()
    assert ok, reason
    return backend


@pytest.fixture(scope="session")
def portable_backend(cbackend) -> CFirmware:
    """The same library with the portable (SWAR) popcount compiled in everywhere."""
    ok, msg = build_firmware("portable")
    assert ok, msg
    backend = CFirmware(lib_path=FIRMWARE / "build" / "portable" / LIB_NAME)
    ok, reason = backend.available()
    assert ok, reason
    return backend


@pytest.fixture(scope="session")
def asan_tools(cbackend):
    """mbnn_check / mbnn_fuzz built with -fsanitize=address,undefined."""
    ok, msg = build_firmware("asan")
    if not ok and "sanitize" in msg:
        pytest.skip(f"the compiler cannot build with sanitizers: {msg.splitlines()[-1]}")
    assert ok, msg
    return FIRMWARE / "build" / "asan"


@pytest.fixture(scope="session")
def x86_level_backends(cbackend) -> dict[str, CFirmware]:
    """The library built for x86-64-v3 (AVX2) and x86-64-v2 (POPCNT): the kernels other x86
    machines run, compiled and held to the reference on this one. Skipped off x86-64."""
    import platform
    if platform.machine() not in ("x86_64", "AMD64"):
        pytest.skip(f"the x86-64 kernel levels need an x86-64 host, not {platform.machine()}")
    ok, msg = build_firmware("x86-levels")
    assert ok, msg
    out = {}
    for level in ("x86-64-v3", "x86-64-v2"):
        backend = CFirmware(lib_path=FIRMWARE / "build" / level / LIB_NAME)
        ok, reason = backend.available()
        assert ok, reason
        out[level] = backend
    return out
