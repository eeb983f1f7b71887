"""What lets `make test` run on several pytest-xdist workers (and two metabnn commands share a cache): a second
process must wait for a build folder, not write into it at the same time. Each test holds a lock, starts the second
user in a thread (flock locks belong to an open file, so two opens in one process exclude each other) and checks
that it got in only after the lock was released."""

from __future__ import annotations

import fcntl
import threading
import time

import pytest

from metabnn.sim.random_model import random_model

HOLD_S = 0.5


def entered_after_release(lockfile, second) -> None:
    """Hold `lockfile`, run second() in a thread, release after HOLD_S: second() must finish after the release."""
    done = {}

    def run():
        second()
        done["at"] = time.monotonic()

    with open(lockfile, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        t = threading.Thread(target=run)
        t.start()
        time.sleep(HOLD_S)
        released = time.monotonic()
    t.join(timeout=60)
    assert "at" in done, "the second user never finished"
    assert done["at"] >= released, "the second user did not wait for the lock"


def test_a_model_run_waits_for_the_one_using_the_builds_hex_folder(tmp_path):
    from metabnn.backends.rtl import holding_model

    a, b = random_model((16, 8, 4), seed=1), random_model((16, 8, 4), seed=2)
    with holding_model(tmp_path, a):
        first = (tmp_path / "hex" / "l0_w.hex").read_text()
    seen = {}

    def second():
        with holding_model(tmp_path, b):
            seen["w"] = (tmp_path / "hex" / "l0_w.hex").read_text()

    entered_after_release(tmp_path / "hex.lock", second)
    assert seen["w"] != first  # the second run loaded its own model


def test_a_firmware_make_waits_for_the_one_in_the_same_folder(tmp_path):
    from metabnn.backends.c import build_firmware

    if build_firmware("--version", tmp_path)[0] is False:  # make itself must run; the target does not matter
        pytest.skip("make is not available")
    result = {}
    entered_after_release(tmp_path / ".make.lock",
                          lambda: result.setdefault("r", build_firmware("no-such-target", tmp_path)))
    assert result["r"][0] is False  # make ran (and said there is no such target) once the lock was free
