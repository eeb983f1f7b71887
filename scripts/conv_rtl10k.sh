#!/bin/sh
# The trained fmnist-conv net through golden and the RTL (native co-simulation of mbnn_conv_top) on all 10,000
# Fashion-MNIST test images, in chunks of 250 (metabnn verify --offset/--limit). Resumable: a chunk whose
# chunk_NNNNN.txt exists is done and skipped; a chunk cut off leaves only chunk_NNNNN.part, rerun from the start.
# Run:  metabnn export runs/conv/fmnist-conv/model.pt --out runs/conv/rtl10k/fc.mbnn
#       setsid nohup nice -n 5 sh scripts/conv_rtl10k.sh >> runs/conv/rtl10k/driver.log 2>&1 &
# (a chunk of 250 took 38-338 s here, at load 1-13; the sum: grep '^rtl ' runs/conv/rtl10k/chunk_*.txt)
cd "$(dirname "$0")/.." || exit 2
D=${D:-runs/conv/rtl10k}
[ -f $D/fc.mbnn ] || { echo "no $D/fc.mbnn: export the conv checkpoint there first (see the top of this script)" >&2; exit 2; }
STEP=250
o=0
while [ $o -lt 10000 ]; do
  f=$(printf '%s/chunk_%05d' $D $o)
  if [ ! -f $f.txt ]; then
    {
      echo "# start $(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg) HEAD $(git rev-parse --short HEAD) hw-diff $(git diff HEAD -- hw metabnn/backends | sha1sum | cut -c1-12)"
      s=$(date +%s)
      .venv/bin/metabnn verify $D/fc.mbnn --backends golden,rtl --task fmnist --offset $o --limit $STEP 2>&1
      echo "# rc $? wall_s $(( $(date +%s) - s )) end $(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg)"
    } > $f.part
    grep -q '^# rc 0 ' $f.part && mv $f.part $f.txt || echo "chunk $o failed: see $f.part"
  fi
  o=$((o + STEP))
done
echo "all chunks run $(date -u +%FT%TZ)"
