"""Suite-wide options and fixtures for tests/ and hw/tb/ (both test paths, so this file sits above them): long runs
are opt-in (`pytest --runslow` or METABNN_SLOW=1)."""

import os

# torch's OpenMP threads read their wait policy once, when torch loads: spin-waiting threads on 2 shared
# cores cost ~10x the CPU (docs/TRAINING.md). metabnn.train sets the same default; set it before any import.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest  # noqa: E402


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


# --------------------------------------------------------------------------- a real trained model, once per run
# Tests of every backend run a genuinely trained and exported network on real MNIST images, not only random
# models. It is small (784-128-128-10, one epoch on 10,000 MNIST images: seconds on 2 cores) and trained once
# per test session; the paper-sized model is the demo's and the README's business.

@pytest.fixture(scope="session")
def mnist():
    from metabnn.errors import DataMissingError
    from metabnn.train.data import load

    try:
        return load("mnist")
    except DataMissingError as e:
        pytest.skip(str(e))


@pytest.fixture(scope="session")
def trained_checkpoint(tmp_path_factory, mnist):
    """model.pt of a small metaplastic BNN trained on MNIST by `metabnn train`."""
    from metabnn.cli import main

    out = tmp_path_factory.mktemp("trained")
    # gamma starts at 1 here: after one short epoch that gives the steadier accuracy (docs/TRAINING.md)
    rc = main(["train", "--tasks", "mnist", "--hidden", "128", "128", "--epochs", "1", "--meta", "1.35",
               "--bn-gamma-init", "one",
               "--train-subset", "10000", "--test-subset", "2000", "--seed", "0", "--quiet",
               "--out", str(out), "--overwrite"])
    assert rc == 0
    return out / "model.pt"


@pytest.fixture(scope="session")
def trained_model(trained_checkpoint):
    """The integer metabnn.sim.Model exported from `trained_checkpoint` (8-bit hidden weights)."""
    from metabnn.export.quantize import from_floatnet
    from metabnn.train.checkpoint import load_floatnet

    return from_floatnet(load_floatnet(trained_checkpoint))
