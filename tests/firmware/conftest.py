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
