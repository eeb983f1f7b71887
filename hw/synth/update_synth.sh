#!/bin/sh
# Yosys synthesis of one metaplastic update unit (hw/rtl/mbnn_update.sv) for one layer shape.
#   hw/synth/update_synth.sh K N PIXELS HB TK LANES [ice40|generic] > stat.txt
# ice40: synth_ice40 (LUT4, SB_DFF*, SB_RAM40_4K; multipliers in LUTs, no -dsp); generic: synth (gates).
set -eu
K=$1; N=$2; PIXELS=$3; HB=$4; TK=$5; LANES=$6; TARGET=${7:-ice40}
RTL=$(cd "$(dirname "$0")/../rtl" && pwd)
# the sources: hw/rtl/mbnn_update.f, the one file list of this top (`//` lines are comments)
SRC=$(grep -v "^//" "$RTL/mbnn_update.f" | sed "s|^|$RTL/|" | tr "\n" " ")
case $TARGET in
  ice40) SYNTH="synth_ice40 -top mbnn_update" ;;
  generic) SYNTH="synth -top mbnn_update" ;;
  *) echo "update_synth.sh: target must be ice40 or generic, got $TARGET" >&2; exit 2 ;;
esac
yosys -q -p "read_verilog -sv -defer $SRC; \
hierarchy -top mbnn_update -chparam K $K -chparam N $N -chparam PIXELS $PIXELS -chparam HB $HB \
-chparam TK $TK -chparam LANES $LANES; $SYNTH; tee -q -o /dev/stdout stat"
