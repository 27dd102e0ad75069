#!/usr/bin/env bash
# Reproduction recipe, ISEAR: the CSV release (pipe-separated databank export or emotion,text); 80/10/10 seeded split.
# synthesize -> train -> finetune -> evaluate; SCALE=cpu (default, embedded models) or SCALE=gpu
# (Mistral-7B-Instruct + RoBERTa-large). See scripts/recipe_common.sh and docs/downstream.md.
#   DATA=/path/to/release SCALE=gpu scripts/recipe_isear.sh
source "$(dirname "$0")/recipe_common.sh"
run_recipe isear contextless tests/downstream/fixtures/isear/isear.csv
