#!/usr/bin/env bash
# Shared driver of the reproduction recipes (scripts/recipe_<task>.sh set TASK and call run_recipe):
#   synthesize -> train (28 labels) -> finetune on the benchmark (label-mapped head) -> evaluate.
#
# SCALE=cpu (default): the embedded models (SmolLM2-135M-Instruct, all-MiniLM-L6-v2), a few passages,
#   a few hundred steps at most; runs on a laptop CPU in minutes. Numbers are a smoke test, not a result.
# SCALE=gpu: the settings of a real run: Mistral-7B-Instruct under vLLM over your narrative corpus
#   (CORPUS=..., the paper's scale is ~100K contextual + ~300K context-less examples), RoBERTa-large
#   students in bf16. Needs one 80 GB GPU (or set TP=2 for two smaller ones).
#
# Other variables: DATA (the benchmark's public release; default: the project's format fixtures),
# RUN (output folder, default runs/recipe-<task>-<scale>), SKIP_SYNTH=1 (reuse $RUN/synth),
# INIT (an existing 28-label model folder: skips synth and train), BACKEND (synth backend override),
# CONTEXT_TURNS (IEMOCAP: previous turns in the context, default 3), GOLD (human-labelled utterances, e.g. the
# GoEmotions dev TSV: `teacher-eval` scores the teacher on them before synth; set it before a GPU run).
set -euo pipefail
cd "$(dirname "$0")/.."
EMOPILLARS=${EMOPILLARS:-.venv/bin/emopillars}

run_recipe() {
  local task=$1 mode=$2 data_default=$3
  local scale=${SCALE:-cpu}
  local run=${RUN:-runs/recipe-$task-$scale}
  local data=${DATA:-$data_default}
  local llm_flags synth_flags train_flags finetune_flags
  case $scale in
    cpu)
      # vLLM's constrained decoding: without it the 135M model writes almost no usable scenes.
      llm_flags=(--backend "${BACKEND:-vllm}")
      synth_flags=("${llm_flags[@]}")
      train_flags=(--epochs 3 --batch-size 16 --max-length 128 --lr 5e-5)
      finetune_flags=(--epochs 3 --batch-size 16 --max-length 128 --lr 5e-5)
      ;;
    gpu)
      llm_flags=(--backend "${BACKEND:-vllm}" --model "${GENERATOR:-mistralai/Mistral-7B-Instruct-v0.3}"
        --dtype bfloat16 --gpu-memory-utilization 0.9 --max-model-len 8192 --tensor-parallel-size "${TP:-1}")
      synth_flags=("${llm_flags[@]}" --contextless-per-example 3)
      [ -n "${CORPUS:-}" ] && synth_flags+=(--corpus "$CORPUS")
      train_flags=(--model "${ENCODER:-FacebookAI/roberta-large}" --epochs 3 --batch-size 32 --lr 1e-5
        --max-length 256 --warmup-ratio 0.1 --mixed-precision bf16 --patience 3)
      finetune_flags=(--epochs 10 --batch-size 32 --lr 1e-5 --max-length 256 --mixed-precision bf16 --patience 3)
      ;;
    *) echo "SCALE must be cpu or gpu, got $scale" >&2; exit 2 ;;
  esac
  local read_flags=()
  [ -n "${CONTEXT_TURNS:-}" ] && read_flags+=(--context-turns "$CONTEXT_TURNS")
  mkdir -p "$run"
  local init=${INIT:-$run/pretrained}
  if [ -z "${INIT:-}" ]; then
    # First check that the teacher labels well: hundreds of GPU-hours follow.
    [ -z "${GOLD:-}" ] || "$EMOPILLARS" teacher-eval --gold "$GOLD" --out "$run/teacher-eval" --max-examples 500 \
      "${llm_flags[@]}"
    [ "${SKIP_SYNTH:-0}" = 1 ] || "$EMOPILLARS" synth --out "$run/synth" "${synth_flags[@]}"
    # The 28-label student, in the mode the benchmark needs (dialogue tasks see their context).
    "$EMOPILLARS" train --data "$run/synth" --out "$init" --mode "$mode" "${train_flags[@]}"
  fi
  "$EMOPILLARS" finetune --task "$task" --data "$data" --init "$init" --out "$run/$task" \
    "${finetune_flags[@]}" "${read_flags[@]}"
  "$EMOPILLARS" evaluate --model "$run/$task" --task "$task" --data "$data" --split test \
    --out "$run/$task-test.json" "${read_flags[@]}"
}
