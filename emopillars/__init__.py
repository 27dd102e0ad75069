"""emopillars: narrative-grounded emotion data from an LLM, distilled into small emotion classifiers.

The Python API mirrors the commands (each takes the command's config):

    from emopillars import SynthConfig, TrainConfig, synthesize, train
    synthesize(SynthConfig(out="runs/demo"))                       # -> SynthReport
    result = train(TrainConfig(out="runs/student"), data=dataset)   # a datasets.Dataset/DatasetDict
    result.out, result.validation["macro_f1"]                       # -> TrainResult
    finetune(FinetuneConfig(...))                                   # -> FinetuneResult (train's + task_test)
    tune(TuneConfig(n_trials=20), TrainConfig(data="runs/demo"))    # -> TuneResult (an Optuna study)
    evaluate(EvaluateConfig(...)); EmotionClassifier.from_pretrained(...)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from emopillars.console import vllm_level_from_the_start
from emopillars.errors import EmopillarsError
from emopillars.orphans import die_with_parent
from emopillars.taxonomy import LABELS

if TYPE_CHECKING:
    from emopillars.distill.config import TrainConfig, TuneConfig
    from emopillars.distill.outputs import TrainResult
    from emopillars.distill.trainer import train
    from emopillars.distill.tune import TuneResult, tune
    from emopillars.downstream.config import EvaluateConfig, FinetuneConfig
    from emopillars.downstream.evaluate import evaluate
    from emopillars.downstream.finetune import FinetuneResult, finetune
    from emopillars.hub import push
    from emopillars.inference.classifier import EmotionClassifier
    from emopillars.inference.config import PredictConfig
    from emopillars.synth.config import SynthConfig
    from emopillars.synth.pipeline import synthesize

__version__ = "0.1.0"
vllm_level_from_the_start()  # runs in vLLM's spawned engine processes too, before they import vLLM
die_with_parent()  # there too: a SIGKILLed run takes its engine with it
# torch-heavy API is imported on first use so `import emopillars` and the CLI stay fast.
_LAZY = {
    "EmotionClassifier": "emopillars.inference.classifier",
    "PredictConfig": "emopillars.inference.config",
    "TrainConfig": "emopillars.distill.config",
    "TrainResult": "emopillars.distill.outputs",
    "train": "emopillars.distill.trainer",
    "TuneConfig": "emopillars.distill.config",
    "TuneResult": "emopillars.distill.tune",
    "tune": "emopillars.distill.tune",
    "EvaluateConfig": "emopillars.downstream.config",
    "FinetuneConfig": "emopillars.downstream.config",
    "evaluate": "emopillars.downstream.evaluate",
    "FinetuneResult": "emopillars.downstream.finetune",
    "finetune": "emopillars.downstream.finetune",
    "push": "emopillars.hub",
    "SynthConfig": "emopillars.synth.config",
    "synthesize": "emopillars.synth.pipeline",
}
__all__ = [
    "LABELS",
    "EmopillarsError",
    "EmotionClassifier",
    "EvaluateConfig",
    "FinetuneConfig",
    "FinetuneResult",
    "PredictConfig",
    "SynthConfig",
    "TrainConfig",
    "TrainResult",
    "TuneConfig",
    "TuneResult",
    "__version__",
    "evaluate",
    "finetune",
    "push",
    "synthesize",
    "train",
    "tune",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'emopillars' has no attribute {name!r}")
