"""The golden model stands alone: importing metabnn.sim loads no training, export, backend or torch code
(data flows train -> export -> sim, never back)."""

import subprocess
import sys


def test_sim_imports_nothing_downstream_or_upstream():
    code = ("import sys, metabnn.sim; print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] == 'torch' "
            "or m.startswith(('metabnn.train', 'metabnn.export', 'metabnn.backends', 'metabnn.verify')))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == ""
