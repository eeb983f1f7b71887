"""metabnn.export: from a trained checkpoint to the deployable integer model.

quantize.py     FloatNet -> integer Model (BatchNorm folded, hidden weights quantized)
mbnn.py         the `.mbnn` container of docs/FORMAT.md section 6: to_bytes / from_bytes / save / load
"""

from metabnn.export.errors import FormatError
from metabnn.export.mbnn import from_bytes, load, save, to_bytes

__all__ = ["FormatError", "to_bytes", "from_bytes", "save", "load"]
