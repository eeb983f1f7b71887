"""A per-user build cache for the C and RTL backends, keyed by what the build depends on.

`$METABNN_CACHE`, else `$XDG_CACHE_HOME/metabnn`, else `~/.cache/metabnn`. Each build lives in
`<root>/<kind>/<key>` where key hashes the source files' bytes, the flags and the tool versions, so an edited
source, another compiler or another Verilator gets a fresh build and an unchanged one is reused, from a checkout
and from an installed wheel alike (nothing is ever built into site-packages). A build is marked complete only when it
succeeded, so a killed build is redone, never used.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
from pathlib import Path
from typing import Callable, Iterable

from metabnn.errors import MetabnnError

DONE = ".complete"


def cache_root() -> Path:
    if os.environ.get("METABNN_CACHE"):
        return Path(os.environ["METABNN_CACHE"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "metabnn"


def build_key(files: Iterable[Path], extra: Iterable[str] = ()) -> str:
    """sha256 over each file's name and bytes (in sorted order) and the extra strings (flags, tool versions)."""
    h = hashlib.sha256()
    for f in sorted(Path(p) for p in files):
        h.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
    for e in extra:
        h.update(str(e).encode() + b"\0")
    return h.hexdigest()[:20]


def cached_build(kind: str, key: str, build: Callable[[Path], None]) -> Path:
    """The folder of build `kind/key`, running build(folder) first unless a finished one is there.

    build() gets an empty folder (its final place: Verilator compiles absolute paths into its binaries, so a
    build cannot be moved) and fills it, raising on failure. A file lock serialises processes building the same
    key; a folder without the completion mark (a killed build) is wiped and built again."""
    final = cache_root() / kind / key
    if (final / DONE).is_file():
        return final
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        lock = open(final.parent / f"{key}.lock", "w")
    except OSError as e:
        raise MetabnnError(f"cannot write the build cache {final.parent} ({e.strerror}); "
                           "set METABNN_CACHE to a writable folder") from None
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (final / DONE).is_file():  # built by another process while we waited
            return final
        shutil.rmtree(final, ignore_errors=True)
        final.mkdir()
        build(final)
        (final / DONE).write_text(key + "\n")
    return final
