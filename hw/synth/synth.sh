#!/bin/sh
# Yosys synthesis of the inference engine (hw/rtl/mbnn_top.sv) for one model shape and SIMD/PE setting.
#   hw/synth/synth.sh HEXDIR SIMD PE [ice40|generic] > stat.txt
# HEXDIR holds mbnn_model.svh and the hex files (metabnn.export.readmemh.write_readmemh or
# `metabnn export --hex-dir`). ice40: synth_ice40 (LUT4, SB_DFF*, SB_RAM40_4K); generic: synth (gates).
# -defer: elaborate only with the real parameters (the default ones name hex files that do not exist).
set -eu
HEXDIR=$1; SIMD=$2; PE=$3; TARGET=${4:-ice40}
RTL=$(cd "$(dirname "$0")/../rtl" && pwd)
# the sources: hw/rtl/mbnn_top.f, the one file list of this top (`//` lines are comments)
SRC=$(grep -v "^//" "$RTL/mbnn_top.f" | sed "s|^|$RTL/|" | tr "\n" " ")
case $TARGET in
  ice40) SYNTH="synth_ice40 -top mbnn_top" ;;
  generic) SYNTH="synth -top mbnn_top" ;;
  *) echo "synth.sh: target must be ice40 or generic, got $TARGET" >&2; exit 2 ;;
esac
yosys -q -p "read_verilog -sv -defer -I$HEXDIR $SRC; hierarchy -top mbnn_top -chparam SIMD $SIMD -chparam PE $PE; \
$SYNTH; tee -q -o /dev/stdout stat"
