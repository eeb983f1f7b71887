import sys

import pytest
import torch


@pytest.fixture(autouse=True)
def _few_threads():
    # the machine is shared: tests stay on at most 2 threads
    torch.set_num_threads(min(2, torch.get_num_threads()))


def run_cli(argv, monkeypatch=None):
    """metabnn.cli.main with only the train subcommand wired (the others live in other folders)."""
    import metabnn.cli as cli

    old = cli.COMMANDS
    cli.COMMANDS = ["metabnn.train.cli"]
    try:
        return cli.main(argv)
    finally:
        cli.COMMANDS = old
