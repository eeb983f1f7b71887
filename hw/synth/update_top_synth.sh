#!/bin/sh
# Yosys synthesis of the learning top (hw/rtl/mbnn_update_top.sv: engines + one update unit per layer).
#   hw/synth/update_top_synth.sh HEXDIR SIMD PE HB TK [ice40|generic] > stat.txt
# HEXDIR holds mbnn_model.svh and the hex files (metabnn.export.readmemh.write_readmemh); compare with
# hw/synth/synth.sh (the engines alone) for the cost of learning on chip.
# Parameters via `chparam -set` before `hierarchy`: Yosys 0.23 fails an assertion
# (modules_.count(module->name) == 0) when `hierarchy -chparam` derives this top's update units.
set -eu
HEXDIR=$1; SIMD=$2; PE=$3; HB=$4; TK=$5; TARGET=${6:-ice40}
RTL=$(cd "$(dirname "$0")/../rtl" && pwd)
# the sources: hw/rtl/mbnn_update_top.f, the one file list of this top (`//` lines are comments)
SRC=$(grep -v "^//" "$RTL/mbnn_update_top.f" | sed "s|^|$RTL/|" | tr "\n" " ")
case $TARGET in
  ice40) SYNTH="synth_ice40 -top mbnn_update_top" ;;
  generic) SYNTH="synth -top mbnn_update_top" ;;
  *) echo "update_top_synth.sh: target must be ice40 or generic, got $TARGET" >&2; exit 2 ;;
esac
yosys -q -p "read_verilog -sv -defer -I$HEXDIR $SRC; \
chparam -set SIMD $SIMD -set PE $PE -set HB $HB -set TK $TK mbnn_update_top; hierarchy -top mbnn_update_top; \
$SYNTH; tee -q -o /dev/stdout stat"
