"""The hardware tests that stay under tests/ (native co-simulation, verify): hw/tb's helpers and `hw_tools`."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "hw" / "tb"))

from tbtools import hw_tools  # noqa: E402,F401  (a fixture: used by name)
