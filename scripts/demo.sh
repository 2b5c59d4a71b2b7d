#!/usr/bin/env bash
# `make demo`: validate, compile and draw an example, run it on the local engine, inspect it.
set -euo pipefail
BIN=${1:-.venv/bin}
WF=statemachines/etl.py:wf
export STEPDAG_HOME=${STEPDAG_HOME:-.stepdag}
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "stepdag validate $WF"
"$BIN/stepdag" validate "$WF"
step "stepdag compile   (every workflow under statemachines/ -> <name>.asl.json)"
"$BIN/stepdag" compile
step "stepdag graph $WF"
"$BIN/stepdag" graph "$WF"
step "stepdag graph statemachines/features.py:wf --format mermaid   (a DAG that is not series-parallel)"
"$BIN/stepdag" graph statemachines/features.py:wf --format mermaid
name="demo-$(date +%Y%m%d-%H%M%S)-$$"
step "stepdag run $WF --input @statemachines/inputs/etl.json --name $name"
"$BIN/stepdag" run "$WF" --input @statemachines/inputs/etl.json --name "$name"
step "stepdag executions show $name"
"$BIN/stepdag" executions show "$name"
step "stepdag executions output $name"
"$BIN/stepdag" executions output "$name"
step "stepdag executions list --limit 5"
"$BIN/stepdag" executions list --limit 5
printf '\nState is in %s/stepdag.db; try `stepdag --help`.\n' "$STEPDAG_HOME"
