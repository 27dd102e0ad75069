"""emopillars: narrative-grounded emotion data from an LLM, distilled into small emotion classifiers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from emopillars.errors import EmopillarsError
from emopillars.taxonomy import LABELS

if TYPE_CHECKING:
    from emopillars.distill.classifier import EmotionClassifier

__version__ = "0.1.0"
__all__ = ["LABELS", "EmopillarsError", "EmotionClassifier", "__version__"]


def __getattr__(name: str) -> Any:
    # torch-heavy API is imported on first use so `import emopillars` and the CLI stay fast.
    if name == "EmotionClassifier":
        from emopillars.distill.classifier import EmotionClassifier

        return EmotionClassifier
    raise AttributeError(f"module 'emopillars' has no attribute {name!r}")
