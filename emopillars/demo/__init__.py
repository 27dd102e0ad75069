"""`emopillars demo`: a local web page to try a classifier and browse a synthesized corpus (Gradio).

`corpus.py` reads and filters a synth run (no gradio); `offer.py` decides what the page may open (the
models and runs named at start-up); `app.py` lays out the page and its handlers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from emopillars.inference.config import DemoConfig


def launch(cfg: DemoConfig) -> None:
    from emopillars.demo.app import launch as serve
    from emopillars.demo.offer import Offer

    serve(Offer(cfg.model, cfg.data, cfg.allow_paths), cfg.host, cfg.port, cfg.concurrency)
