"""Suite-wide options: long runs are opt-in (`pytest --runslow` or METABNN_SLOW=1)."""

import os

import pytest


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False,
                     help="also run tests marked slow (full MNIST through RTL, long training)")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow") or os.environ.get("METABNN_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="slow: opt in with --runslow or METABNN_SLOW=1")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
