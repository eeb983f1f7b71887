"""Thread-side speed settings of the trainer (docs/TRAINING.md, Speed): which compiled loops run on several threads."""

import os
import subprocess
import sys

import pytest
import torch

from metabnn.errors import UsageError
from metabnn.train import optim


def test_the_defaults_are_set_before_torch_loads_and_a_users_setting_wins():
    code = "import os, metabnn.train; print(os.environ['OMP_WAIT_POLICY'], os.environ['TORCHINDUCTOR_CPP_MIN_CHUNK_SIZE'])"
    env = {k: v for k, v in os.environ.items() if k != "TORCHINDUCTOR_CPP_MIN_CHUNK_SIZE"}
    env["OMP_WAIT_POLICY"] = "ACTIVE"  # a user's choice: kept (both are setdefault)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["ACTIVE", "65536"]


def test_min_chunk_size_reads_the_environment(monkeypatch):
    monkeypatch.setenv("TORCHINDUCTOR_CPP_MIN_CHUNK_SIZE", "4096")
    assert optim.min_chunk_size() == 4096
    monkeypatch.delenv("TORCHINDUCTOR_CPP_MIN_CHUNK_SIZE")
    assert optim.min_chunk_size() is None  # unset by the user: inductor's own default
    monkeypatch.setenv("TORCHINDUCTOR_CPP_MIN_CHUNK_SIZE", "64k")
    with pytest.raises(UsageError, match="not a whole number"):
        optim.min_chunk_size()


def _scale_shift(a, w, b):
    return torch.where(a * w + b >= 0, 1.0, -1.0)  # a BatchNorm-sized elementwise loop, as in the training step


@pytest.mark.skipif(os.environ.get("METABNN_COMPILE", "1") == "0", reason="compiling is off")
@pytest.mark.parametrize("chunk, parallel", [("65536", False), ("512", True)])
def test_a_small_loop_stays_on_one_thread_at_the_default(monkeypatch, chunk, parallel):
    """A [100, 512] loop (51,200 values: one BatchNorm of a training batch) at 2 threads: one thread at the
    default (no OpenMP region to wake the other thread for), split over both at inductor's own 512. The value
    reaches the compile through compile_or_off's options, whatever inductor read from the environment."""
    from torch._inductor.utils import run_and_get_code

    monkeypatch.setenv("TORCHINDUCTOR_CPP_MIN_CHUNK_SIZE", chunk)
    torch.set_num_threads(2)  # the autouse fixture restores 1
    torch._dynamo.reset()
    fn = optim.compile_or_off(_scale_shift)
    a, w, b = torch.randn(100, 512), torch.randn(512), torch.randn(512)
    got, codes = run_and_get_code(fn, a, w, b)
    torch._dynamo.reset()
    assert torch.equal(got, _scale_shift(a, w, b))
    assert ("#pragma omp parallel" in "".join(codes)) == parallel
