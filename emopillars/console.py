"""What a run shows on the terminal: log levels and progress bars, switched by `-v`/`-q` and `--no-progress`.

The CLI (`options.py`) flips these switches; library code (backends, the embedder) reads them. They
live apart from the CLI so reading them imports no typer.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager


def setup_logging(verbose: bool = False, quiet: bool = False) -> None:
    """The project's own logs at INFO (DEBUG with -v, WARNING with -q); other libraries at WARNING unless -v."""
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    logging.getLogger().setLevel(logging.INFO if verbose else logging.WARNING)
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    logging.getLogger("emopillars").setLevel(level)


def vllm_level_from_the_start() -> None:
    """Apply $VLLM_LOGGING_LEVEL to vLLM's loggers before vLLM is imported.

    vLLM's engine processes are spawned: each imports the parent's main module (emopillars' CLI) first, then vLLM,
    whose import-time warnings (two "Triton is installed, but doesn't include CPU backend" per CPU engine start)
    come before vLLM configures its logger from that variable, so Python printed them whatever it said.
    """
    level = os.environ.get("VLLM_LOGGING_LEVEL", "").upper()
    if level in logging.getLevelNamesMapping():
        logging.getLogger("vllm").setLevel(level)


def progress_bars_disabled() -> bool:
    """Whether `--no-progress` (or the user's own TQDM_DISABLE) turned the bars off."""
    return os.environ.get("TQDM_DISABLE", "").lower() in ("1", "true")


def disable_progress_bars() -> None:
    """Silence every progress bar: ours and the ones transformers, datasets and huggingface_hub draw."""
    os.environ["TQDM_DISABLE"] = "1"  # tqdm reads TQDM_<ARG> as the default of every bar it creates
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    os.environ["HF_DATASETS_DISABLE_PROGRESS_BARS"] = "1"
    # Libraries already imported read their switch only at import: tell them directly.
    if "transformers" in sys.modules:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    if "datasets" in sys.modules:
        import datasets

        datasets.disable_progress_bars()
    if "huggingface_hub" in sys.modules:
        import huggingface_hub

        huggingface_hub.utils.disable_progress_bars()


@contextmanager
def datasets_bars_off() -> Iterator[None]:
    """datasets' progress bars off for a step where they say nothing (saving a run's small splits: a bar per split
    for under a second), then as they were."""
    import datasets

    was_on = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if was_on:
            datasets.enable_progress_bars()
