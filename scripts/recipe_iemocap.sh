#!/usr/bin/env bash
# Reproduction recipe, IEMOCAP (text, 6 classes): utterance rows; sessions 1-4 train, session 5 test; CONTEXT_TURNS previous turns.
# synthesize -> train -> finetune -> evaluate; SCALE=cpu (default, embedded models) or SCALE=gpu
# (Mistral-7B-Instruct + RoBERTa-large). See scripts/recipe_common.sh and docs/downstream.md.
#   DATA=/path/to/release SCALE=gpu scripts/recipe_iemocap.sh
source "$(dirname "$0")/recipe_common.sh"
run_recipe iemocap contextual tests/downstream/fixtures/iemocap/iemocap.csv
