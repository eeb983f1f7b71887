import pytest
import torch


@pytest.fixture(autouse=True)
def _few_threads():
    # the machine is shared: tests stay on at most 2 threads
    torch.set_num_threads(min(2, torch.get_num_threads()))

