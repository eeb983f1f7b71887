"""Atomic file writes, the package's only way to write a file: a reader (or a crash) never sees half a file.

Each write goes to a temporary file in the target's folder (a rename is atomic only within one file system),
is fsync'ed, then os.replace'd over the target. The temporary file is opened with mode 0666, so the kernel
applies the user's umask (0644 by default) exactly as for any file the user creates; mkstemp's 0600 made
exported models unreadable to the rest of a team.

Replacing an existing file keeps its permission bits (a model the user made private stays private).

Temporary names carry the writer's pid and host (`.NAME.PID-RANDOM-HOST.tmp`). A write killed before its
rename (SIGKILL, power loss) leaves one behind; the next write to the same target removes those of this host
whose pid is no longer alive (another host's pid says nothing here, so a shared folder's are left alone).

Any OSError (read-only file system, a folder where the file should be, a parent that cannot be made, a
full disk) becomes one OutputError naming the path and the reason: the CLI prints it as one line, exit 2.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path
from typing import BinaryIO, Callable

from metabnn.errors import OutputError

_SUFFIX = ".tmp"


def _reason(e: OSError) -> str:
    return e.strerror or type(e).__name__


def output_error(path, e: OSError) -> OutputError:
    """The one-line error for an OSError met while writing `path`."""
    return OutputError(f"cannot write {path}: {_reason(e)}")


def ensure_dir(path) -> Path:
    """Make folder `path` (and its parents) or raise OutputError naming why it cannot be one."""
    if not str(path):  # Path("") would quietly be the current folder
        raise OutputError("cannot make a folder with an empty name")
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputError(f"cannot make folder {path}: a file of that name exists")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:  # a parent component is a file: "exists" would puzzle, say what is in the way
        raise OutputError(f"cannot make folder {path}: a part of the path is a file") from None
    except OSError as e:
        raise OutputError(f"cannot make folder {path}: {_reason(e)}") from None
    return path


def _temp_prefix(path: Path) -> str:
    return f".{path.name}."


def _host() -> str:
    return os.uname().nodename.replace("/", "_") or "host"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: alive, another user's
        return True
    return True


def _remove_stale(path: Path) -> None:
    """Delete temporary files of `path` left by writers that died before their rename."""
    prefix = _temp_prefix(path)
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return
    for entry in entries:
        name = entry.name
        if not (name.startswith(prefix) and name.endswith(_SUFFIX)):
            continue
        pid_text, _, rest = name[len(prefix):-len(_SUFFIX)].partition("-")
        if rest.partition("-")[2] != _host() or not pid_text.isdigit():
            continue
        if int(pid_text) != os.getpid() and not _pid_alive(int(pid_text)):
            try:
                os.unlink(entry.path)
            except OSError:
                pass  # another writer cleaned it first, or the folder is not ours to clean


def _fsync_dir(folder: Path) -> None:
    # The rename itself is durable only once the folder is synced; not every file system allows it.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _target(path) -> Path:
    """The file a write replaces: through symlinks (the link stays a link), never an empty name."""
    if not str(path):
        raise OutputError("cannot write a file with an empty name")
    path = Path(path)
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def _open_temp(path: Path) -> tuple[Path, int]:
    """A new temporary file for `path` (folder checked and made, stale leftovers removed): (name, fd)."""
    if path.is_dir():
        raise OutputError(f"cannot write {path}: it is a folder")
    if path.exists() and not path.is_file():  # a rename would replace /dev/null itself, or a FIFO
        raise OutputError(f"cannot write {path}: it is not a regular file")
    try:
        ensure_dir(path.parent)
    except OutputError as e:
        raise OutputError(f"cannot write {path} ({e})") from None
    _remove_stale(path)
    tmp = path.parent / f"{_temp_prefix(path)}{os.getpid()}-{secrets.token_hex(4)}-{_host()}{_SUFFIX}"
    try:
        # mode 0666: the kernel applies the umask, as for any file the user makes
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
    except OSError as e:
        raise output_error(path, e) from None
    try:
        os.fchmod(fd, stat.S_IMODE(path.stat().st_mode))  # replacing: the old file's permissions
    except FileNotFoundError:
        pass  # a new file: the umask's
    except OSError as e:
        os.close(fd)
        _unlink_quietly(tmp)
        raise output_error(path, e) from None
    return tmp, fd


def atomic_write_with(path, write: Callable[[BinaryIO], object]) -> None:
    """Call write(file) on a temporary binary file next to `path`, then rename it over `path`.

    For writers that want a file object (torch.save, np.savez). OSError anywhere -> OutputError; any other
    exception from `write` propagates unchanged. Either way the temporary file is removed."""
    path = _target(path)
    tmp, fd = _open_temp(path)
    f = _RecordingFile(os.fdopen(fd, "wb"))
    try:
        with f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        _unlink_quietly(tmp)
        raise output_error(path, e) from None
    except BaseException:
        _unlink_quietly(tmp)
        if f.failure is not None:  # an OSError that torch's C++ writer rewrapped as RuntimeError
            raise output_error(path, f.failure) from None
        raise
    _fsync_dir(path.parent)


def atomic_write_bytes(path, data: bytes) -> None:
    atomic_write_with(path, lambda f: f.write(data))


def atomic_write_text(path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def check_output(path) -> Path:
    """Fail now, before any work, if a file cannot be written at `path` (one OutputError line).

    Makes the parent folder and creates and removes a temporary file there: the only reliable test, since
    root ignores permission bits and a read-only mount shows only when a file is created."""
    path = _target(path)
    tmp, fd = _open_temp(path)
    os.close(fd)
    _unlink_quietly(tmp)
    return path


def check_output_dir(path) -> Path:
    """The same for a folder that files will be written into (made if missing)."""
    folder = ensure_dir(path)
    check_output(folder / ".metabnn-probe")
    return folder


def _unlink_quietly(path: Path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


class _RecordingFile:
    """A binary file that remembers the OSError of a failed write. torch.save calls write() from C++,
    which turns the OSError into a RuntimeError; the recorded error still names the real reason (ENOSPC)."""

    def __init__(self, f: BinaryIO):
        self._f, self.failure = f, None

    def write(self, data) -> int:
        try:
            return self._f.write(data)
        except OSError as e:
            self.failure = e
            raise

    def __getattr__(self, name):  # flush, fileno, tell, seek, ...: the real file's
        return getattr(self._f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self._f.close()
