"""Test modules need unique file names: the folders have no __init__.py, so pytest imports each test file by its
basename and a second file of the same name stops the whole collection ("import file mismatch"). A fresh clone's
`make test` failed that way once (tests/sim and tests/firmware both had test_stochastic.py)."""

from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_test_module_name_is_unique():
    files = [p for top in ("tests", "hw/tb") for p in (ROOT / top).rglob("test_*.py")]
    counts = Counter(p.name for p in files)
    twice = {name: sorted(str(p.relative_to(ROOT)) for p in files if p.name == name)
             for name, n in counts.items() if n > 1}
    assert not twice, f"test modules sharing a name: {twice}"
