from metabnn.errors import MetabnnError


class FormatError(MetabnnError):
    """A `.mbnn` file (or bytes) that does not follow docs/FORMAT.md; the message names the problem."""
