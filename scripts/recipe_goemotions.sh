#!/usr/bin/env bash
# Reproduction recipe, GoEmotions: original train/dev/test.tsv folder or the HF id google-research-datasets/go_emotions (simplified).
# synthesize -> train -> finetune -> evaluate; SCALE=cpu (default, embedded models) or SCALE=gpu
# (Mistral-7B-Instruct + RoBERTa-large). See scripts/recipe_common.sh and docs/downstream.md.
#   DATA=/path/to/release SCALE=gpu scripts/recipe_goemotions.sh
source "$(dirname "$0")/recipe_common.sh"
run_recipe goemotions contextless tests/downstream/fixtures/goemotions/original
