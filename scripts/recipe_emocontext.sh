#!/usr/bin/env bash
# Reproduction recipe, EmoContext (SemEval-2019 Task 3): folder with train.txt/dev.txt/test.txt (labelled).
# synthesize -> train -> finetune -> evaluate; SCALE=cpu (default, embedded models) or SCALE=gpu
# (Mistral-7B-Instruct + RoBERTa-large). See scripts/recipe_common.sh and docs/downstream.md.
#   DATA=/path/to/release SCALE=gpu scripts/recipe_emocontext.sh
source "$(dirname "$0")/recipe_common.sh"
run_recipe emocontext contextual tests/downstream/fixtures/emocontext
