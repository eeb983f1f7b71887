"""Errors the command line turns into one clear line and an exit code.

Anything derived from MetabnnError is a *user* problem (bad option, bad file,
missing data): the CLI prints its message, never a traceback.
"""


class MetabnnError(Exception):
    """Base class: a problem the user can fix. `exit_code` is what the CLI returns."""

    exit_code = 2


class UsageError(MetabnnError):
    """A nonsense option or argument."""


class DataMissingError(MetabnnError):
    """A data set is not installed; the message names the install command."""


class MismatchError(MetabnnError):
    """Two integer backends disagreed (a bug, never a tolerance)."""

    exit_code = 1


class OutputError(MetabnnError):
    """An output cannot be written (read-only disk, a folder in the way, a full disk); names path and reason."""
