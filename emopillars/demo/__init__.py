"""`emopillars demo`: a local web page to try a classifier and browse a synthesized corpus (Gradio).

`corpus.py` reads and filters a synth run (no gradio); `app.py` lays out the page and its handlers.
"""

from __future__ import annotations

from typing import Any


def launch(model: str | None, data: str | None, host: str = "127.0.0.1", port: int = 7860) -> Any:
    from emopillars.demo.app import launch as serve

    return serve(model, data, host, port)
