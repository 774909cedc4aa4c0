#!/usr/bin/env bash
# One chunk of a study on MR (the mechanism study by default: issue 27; docs/results/mechanism-mr.md),
# on any machine:
#
#   scripts/study_chunk.sh [MINUTES] [CONFIG] [SWEEP OVERRIDES...]   # default 60, study_mechanism_mr
#   scripts/study_chunk.sh 30 study_mechanism_mr 'search.seed={grid: [2]}' sweep.max_concurrent_trials=2
#   scripts/study_chunk.sh 60 study_mechanism_mr_fig3                 # Figure 3: the same store
#   EXPORT=results/studies/study-mr scripts/study_chunk.sh 60 study_mr_strict   # the first MR study's cells (whole train split)
#
# The working store is $STUDIES/<sweep.name>; the export goes to EXPORT (default results/studies/<sweep.name
# without its "study-" prefix>). Every config is attacked on the same 300 dev ids, under PROTOCOLS
# (default "vda-paper strict"; the figures' configs name the paper's attack only: PROTOCOLS=vda-paper).
# STUDIES (default /work/studies) holds the working store; WORKERS (default 2) attack workers. Overrides
# narrow the grid (one seed of every arm first, so a chunk cut short still leaves a balanced table) or
# train two cells at once on a machine with nothing else to do: a cell's training key does not depend
# on which grid found it, so the full config later reuses every cell trained this way.
#
# 1. A working store that does not exist yet starts from the committed export, so no committed cell is
#    trained or attacked again (a study is continued, never restarted).
# 2. The sweep trains the cells the store lacks, starting none after MINUTES (running trials finish).
# 3. Every checkpoint still on disk is attacked on the same 300 dev ids under `vda-paper` and `strict`
#    (BERT-Attack, TextFooler, PWWS, union), or PROTOCOLS; the store attacks only what it lacks.
# 4. The checkpoints not yet diagnosed are (vda.diagnostics --new-only). The store is exported to EXPORT (with the
#    diagnostics beside it) after every stage: commit that directory whenever a
#    stage ends, so a session cut off mid-chunk loses at most the stage it was in.
#
# The attacks run with `attack_workers evaluate` after training rather than inside the sweep, so one
# training run serves both protocols and both workers attack once no trial trains.
set -euo pipefail
cd "$(dirname "$0")/.."
MINUTES=${1:-60}
CONFIG=${2:-study_mechanism_mr}
shift $(($# < 2 ? $# : 2))
STUDIES=${STUDIES:-/work/studies}
PY=.venv/bin/python
NAME=$("$PY" -c "import sys; from tune.config import load_sweep; print(load_sweep(sys.argv[1], []).sweep.name)" "$CONFIG")
DIR=$STUDIES/$NAME
EXPORT=${EXPORT:-results/studies/${NAME#study-}}
OFFLINE=()
if [ -x ../shared/bin/offline ]; then OFFLINE=(../shared/bin/offline); fi
EXAMPLES=300
WORKERS=${WORKERS:-2}
PROTOCOLS=${PROTOCOLS:-vda-paper strict}

if [ ! -d "$DIR/store" ] && [ -f "$EXPORT/export.json" ]; then
  "$PY" -m attack_workers import --from "$EXPORT" --store "$DIR/store"
fi
if [ -f "$EXPORT/diagnostics.csv" ] && [ ! -f "$DIR/diagnostics.csv" ]; then cp "$EXPORT/diagnostics.csv" "$DIR/"; fi
export_store() {  # $1: the stage that just ended
  "$PY" -m attack_workers export --store "$DIR/store" --out "$EXPORT"
  if [ -f "$DIR/diagnostics.csv" ]; then cp "$DIR/diagnostics.csv" "$EXPORT/diagnostics.csv"; fi
  echo "study_chunk: exported after $1 ($(date -u +%H:%M))"
}
"${OFFLINE[@]}" "$PY" tune/sweep.py --config "$CONFIG" --max-minutes "$MINUTES" --quiet sweep.output_dir="$STUDIES" \
  sweep.attack.enabled=false 'sweep.objectives=[dev_acc]' "$@"
export_store training
checkpoints=("$DIR"/*/checkpoint_*)
if [ -e "${checkpoints[0]}" ]; then
  for protocol in $PROTOCOLS; do
    attacks=bert-attack
    if [ "$protocol" = strict ]; then attacks=bert-attack,textfooler,pwws; fi
    "${OFFLINE[@]}" "$PY" -m attack_workers evaluate "$DIR" --store "$DIR/store" --protocol "$protocol" \
      --attacks "$attacks" --num-examples "$EXAMPLES" --workers "$WORKERS" \
      || echo "study_chunk: $protocol attacks incomplete (rerun)"
    export_store "$protocol"
  done
  "$PY" -m vda.diagnostics "${checkpoints[@]}" --out "$DIR/diagnostics.csv" --new-only
  export_store diagnostics
fi
"$PY" -m tune.study status --config "$CONFIG" --store "$DIR/store"
