"""The metadata section of a `.mbnn` file (docs/FORMAT.md section 6.1): what the model was trained on.

The section is one canonical JSON object (sorted keys, no spaces, UTF-8), so
`export -> load -> export` stays byte-identical: the reader accepts only the
exact bytes this module would write for the object it decodes. Keys and types
are the documented version-1 set; unknown keys are kept (a newer writer of the
same version may add some) but never interpreted. Every problem is a
FormatError, like any other section.
"""

from __future__ import annotations

import json

from metabnn.export.errors import FormatError

META_VERSION = 1
MAX_META_BYTES = 65536  # the JSON's byte length; a task list of thousands of names fits

# The description of the training data (all together or none of them): see FORMAT.md 6.1.
DATA_KEYS = ("spec", "seed", "kind", "tasks", "test_sets")
KINDS = ("tasks", "stream")


def encode(meta: dict) -> bytes:
    """The canonical bytes of a metadata object (checked as a reader would check them)."""
    try:
        blob = json.dumps(meta, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                          allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as e:  # a NumPy number, a set, NaN: not in the format
        raise FormatError(f"metadata: not encodable as JSON ({e})") from None
    check(meta)
    if not 1 <= len(blob) <= MAX_META_BYTES:
        raise FormatError(f"metadata: {len(blob)} bytes of JSON, the format allows 1..{MAX_META_BYTES}")
    return blob


def _no_duplicates(pairs):
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise FormatError("metadata: a key appears twice")
    return dict(pairs)


def _no_constants(name):
    raise FormatError(f"metadata: {name} is not a JSON number")


def decode(blob: bytes, n_banks: int | None = None) -> dict:
    """Parse and check a metadata section's JSON; `n_banks` also checks the bank indices."""
    try:
        text = blob.decode("utf-8")
    except UnicodeDecodeError:
        raise FormatError("metadata: not valid UTF-8") from None
    try:
        meta = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
    except (ValueError, RecursionError) as e:
        raise FormatError(f"metadata: not valid JSON ({str(e).splitlines()[0][:80]})") from None
    if not isinstance(meta, dict):
        raise FormatError("metadata: the JSON is not an object")
    check(meta, n_banks)
    if encode(meta) != blob:
        raise FormatError("metadata: JSON not in canonical form (sorted keys, no spaces, UTF-8)")
    return meta


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _need(cond: bool, msg: str) -> None:
    if not cond:
        raise FormatError(f"metadata: {msg}")


def check(meta: dict, n_banks: int | None = None) -> None:
    """The version-1 key set and its types (FORMAT.md 6.1); raises FormatError."""
    _need(isinstance(meta, dict), "must be a JSON object")
    _need(meta.get("version") == META_VERSION and _is_int(meta.get("version")),
          f"version {meta.get('version')!r}, this reader knows {META_VERSION}")
    present = [k for k in DATA_KEYS if k in meta]
    if not present:
        return
    _need(len(present) == len(DATA_KEYS), f"keys {', '.join(DATA_KEYS)} go together (missing "
          f"{', '.join(k for k in DATA_KEYS if k not in meta)})")
    _need(isinstance(meta["spec"], str) and meta["spec"] != "", "spec must be a non-empty string")
    _need(_is_int(meta["seed"]), "seed must be an integer")
    _need(meta["kind"] in KINDS, f"kind must be one of {', '.join(KINDS)}")
    sets, tasks = meta["test_sets"], meta["tasks"]
    _need(isinstance(sets, list) and len(sets) >= 1, "test_sets must be a non-empty list")
    for i, s in enumerate(sets):
        _need(isinstance(s, dict) and isinstance(s.get("name"), str) and s["name"] != "",
              f"test_sets[{i}] needs a non-empty name")
        _need(_is_int(s.get("bank")) and s["bank"] >= 0, f"test_sets[{i}].bank must be an integer >= 0")
        _need(n_banks is None or s["bank"] < n_banks,
              f"test_sets[{i}].bank {s['bank']} but the model has {n_banks} bank(s)")
    _need(isinstance(tasks, list) and len(tasks) >= 1, "tasks must be a non-empty list")
    for i, t in enumerate(tasks):
        _need(isinstance(t, dict) and isinstance(t.get("name"), str) and t["name"] != "",
              f"tasks[{i}] needs a non-empty name")
        _need(_is_int(t.get("test_set")) and 0 <= t["test_set"] < len(sets),
              f"tasks[{i}].test_set must index test_sets (0..{len(sets) - 1})")
    if "fingerprint" in meta:
        _need(isinstance(meta["fingerprint"], str), "fingerprint must be a string")
    if "training" in meta:
        _need(isinstance(meta["training"], dict), "training must be an object")
