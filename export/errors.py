from metabnn.errors import MetabnnError


class FormatError(MetabnnError):
    """A `.mbnn` file (or bytes) that does not follow docs/FORMAT.md; the message names the problem."""


def dense_only(model, writer: str) -> None:
    """Refuse a conv model (FORMAT.md version 2) in a writer that knows dense layers only, in one line."""
    if model.has_conv:
        from metabnn.errors import UsageError

        raise UsageError(f"{writer} does not support conv layers yet: a conv net exports to the .mbnn file, ONNX "
                         "and the C header (FORMAT.md version 2)")
