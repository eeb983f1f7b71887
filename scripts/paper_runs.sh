#!/bin/sh
# The paper-scale CPU runs of issue 16 (docs/TRAINING.md), two chains on one thread each, niced:
#   scripts/paper_runs.sh a &   scripts/paper_runs.sh b &
# Each run writes runs/paper/NAME/ (checkpoint after every epoch) and appends to runs/paper/NAME.log. Rerunning the
# script resumes every run from its checkpoint (`metabnn train --resume`); a finished run returns at once.
# The pairs compare m > 0 (chain a) with its m = 0 and whole-set baselines (chain b). The shortest runs go first (the
# stream, ~20 full-set epochs; MNIST -> Fashion-MNIST, 100; pMNIST-1024, 240), so a session that ends finishes
# the most (runs/ is not committed: a new machine starts the chains again; what finished is in docs/results/).
set -eu
cd "$(dirname "$0")/.."
PY=${VENV:-.venv}/bin/python
mkdir -p runs/paper
run() {
  name=$1; shift
  resume=""
  if [ -f "runs/paper/$name/checkpoint.pt" ]; then resume=--resume; fi
  OMP_NUM_THREADS=1 nice -n 19 "$PY" -m metabnn train "$@" --device cpu --out "runs/paper/$name" $resume \
    >> "runs/paper/$name.log" 2>&1
}
case "${1:-}" in
  a) run stream_fmnist_m2.5 --preset stream-fmnist-paper
     run mnist_fmnist_m1.5 --preset mnist-fmnist-paper
     run pmnist1024_m1.35 --preset pmnist-1024 ;;
  b) run stream_fmnist_whole --preset stream-fmnist-whole-paper
     run stream_fmnist_m0 --preset stream-fmnist-paper --meta 0
     run mnist_fmnist_m0 --preset mnist-fmnist-paper --meta 0
     run pmnist1024_m0 --preset pmnist-1024 --meta 0 ;;
  *) echo "usage: scripts/paper_runs.sh a|b   (run both, in the background: they take hours)" >&2; exit 2 ;;
esac
