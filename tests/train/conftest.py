import pytest
import torch


@pytest.fixture(autouse=True)
def _few_threads():
    # One thread: the machine is shared, and on 2 busy cores a 2-thread torch burned ~10x the CPU time for
    # the same work (tests/train/test_experiment.py: 200 s CPU at 2 threads vs 21.5 s at 1, load average ~5).
    # Restored afterwards: other areas' tests (e.g. the session's trained-model fixture) keep their setting.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

