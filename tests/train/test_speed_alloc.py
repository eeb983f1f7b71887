"""Allocation-side speed measures of the trainer (docs/TRAINING.md, Speed): the evaluation's pixels and glibc's malloc."""

import gc
import platform
import resource

import pytest
import torch

from metabnn.train import bn
from metabnn.train.experiment import keep_freed_memory
from metabnn.train.models import MLP


def test_pixels_leave_a_float_input_alone():
    x = torch.arange(256, dtype=torch.uint8).float()
    got = bn._pixels(x)
    assert torch.equal(x, torch.arange(256).float()) and torch.equal(got, torch.arange(256).float() / 255)


@pytest.mark.skipif(platform.system() != "Linux" or not platform.libc_ver()[0].startswith("glibc"),
                    reason="mallopt is glibc's")
def test_a_repeated_evaluation_does_not_fault_its_blocks_in_again(monkeypatch):
    """With keep_freed_memory, the evaluation's 4096-row blocks (8-13 MB tensors each) come back from the heap:
    once the heap has grown to the evaluation's peak (a few evaluations), another takes (almost) no page faults.
    With glibc's defaults every evaluation of these 4,096 images took 6,000-14,000 (measured)."""
    assert keep_freed_memory()
    monkeypatch.setattr(bn, "_compiled_norm", False)  # the eager passes: no compile in this test, more tensors
    torch.manual_seed(0)
    model = MLP([512, 512]).eval()
    x = torch.randint(0, 256, (4096, 784), dtype=torch.uint8)
    # Python's cyclic collector, run in the middle of an evaluation, can free (or allocate) objects left by
    # earlier tests in the same process and fragment the heap: seen once in a session after the trainer's tests,
    # one fresh 8 MiB block (2,048 faults). Collected first and paused while counting.
    gc.collect()
    gc.disable()
    try:
        want = bn.logits(model, x, "adaptive")
        for _ in range(3):  # the heap grows to its peak (measured: faults in the 2nd one, none from the 3rd)
            bn.logits(model, x, "adaptive")
        counts = []
        for _ in range(2):  # the fewer of two: one fresh block is a heap still settling, not glibc's defaults
            before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            got = bn.logits(model, x, "adaptive")
            counts.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
            assert torch.equal(got, want)
    finally:
        gc.enable()
    assert min(counts) < 500, f"{counts} page faults in repeated evaluations"
