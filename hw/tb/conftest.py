"""pytest for hw/tb: the shared helpers (tbtools.py, next to this file) and their `hw_tools` fixture."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tbtools import hw_tools  # noqa: E402,F401  (a fixture: used by name)
