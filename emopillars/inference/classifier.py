"""`EmotionClassifier`: a trained emopillars model folder, ready to label texts.

Public API (stable):
    EmotionClassifier.from_pretrained(path_or_hub_id, device=None, revision=None, task=None) -> EmotionClassifier
        task: one head of a multi-task folder (`distill/tasks.py`); None: its default task.
    clf.predict(texts, contexts=None) -> list[{"labels": [...], "scores": {label: prob}}]
        labels: scores at or above each label's tuned threshold (multi_label), or the argmax
        (single_label); scores: every label's probability (sigmoid or softmax).
    clf.predict_proba(texts, contexts=None) -> np.ndarray (N, L)
    clf.explain(texts, contexts=None, label=None) -> list[{"text", "context", "explanations": [...]}]
        Integrated Gradients word attributions (see `inference/explain.py`); torch models only.
    clf.save_pretrained(path)
    clf.predict_pipeline(texts, contexts=None) -> list[list[{"label", "score"}]]  # transformers' shape
    clf.labels, clf.thresholds (np.ndarray (L,)), clf.mode, clf.problem_type, clf.model, clf.tokenizer,
    clf.backend ("torch" | "onnx")

The folder is a plain `save_pretrained` one: `transformers.pipeline("text-classification",
model=path, top_k=None)` loads it; `config.emopillars` holds mode, problem_type, thresholds and
max_length (thresholds also in thresholds.json). A folder written by `emopillars export` holds
`model.onnx` instead of weights and runs on onnxruntime (`inference/onnx_model.py`): no torch model is
loaded, and `clf.model` / `clf.tokenizer` are an `OnnxModel` and a `tokenizers.Tokenizer`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from emopillars.errors import EmopillarsError


class EmotionClassifier:
    """A sequence classifier plus its tokenizer, labels, thresholds and input mode."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        thresholds: np.ndarray | None = None,
        mode: str = "contextless",
        max_length: int = 128,
    ) -> None:
        self.model, self.tokenizer = model, tokenizer
        config = model.config
        self.labels: tuple[str, ...] = tuple(config.id2label[i] for i in range(config.num_labels))
        self.problem_type = "single_label" if config.problem_type == "single_label_classification" else "multi_label"
        self.thresholds = (
            np.full(len(self.labels), 0.5, dtype=np.float32)
            if thresholds is None
            else np.asarray(thresholds, np.float32)
        )
        assert self.thresholds.shape == (len(self.labels),)
        self.mode, self.max_length = mode, max_length
        self.path: Path | None = None  # the local folder it was loaded from (a Hub id's cache snapshot)

    @classmethod
    def from_pretrained(
        cls, path: str | Path, device: str | None = None, revision: str | None = None, task: str | None = None
    ) -> EmotionClassifier:
        """Load a model folder written by `save_pretrained` or `emopillars export` (runs on onnxruntime; `device`
        is ignored), or a Hub id (`org/name[@revision]`) through huggingface_hub's cache (any HF sequence
        classifier works: thresholds 0.5)."""
        from emopillars.distill.tasks import load_task_model, task_entry
        from emopillars.hub import resolve_model
        from emopillars.inference.onnx_model import ONNX_FILE

        folder = resolve_model(path, revision)
        entry = task_entry(folder, task)  # None: the folder's own head
        if entry is not None:
            from transformers import AutoTokenizer

            model = load_task_model(folder, entry, device)
            tokenizer = AutoTokenizer.from_pretrained(folder)
        elif (folder / ONNX_FILE).is_file():
            from emopillars.inference.onnx_model import OnnxModel

            model = OnnxModel(folder)
            tokenizer = model.tokenizer
        else:
            from transformers import AutoTokenizer

            from emopillars.distill.heads import load_sequence_classifier

            model = load_sequence_classifier(folder, device)  # a linear or a tanh head
            tokenizer = AutoTokenizer.from_pretrained(folder)
        meta = json.loads((folder / "config.json").read_text(encoding="utf-8")).get("emopillars") or {}
        thresholds = meta.get("thresholds") if entry is None else entry["thresholds"]
        if thresholds is None and (folder / "thresholds.json").is_file():
            thresholds = json.loads((folder / "thresholds.json").read_text(encoding="utf-8"))
        labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
        vector = None if thresholds is None else np.array([thresholds.get(name, 0.5) for name in labels])
        clf = cls(model, tokenizer, vector, meta.get("mode", "contextless"), meta.get("max_length", 128))
        clf.path = folder
        return clf

    @property
    def backend(self) -> str:
        """Which runtime runs the model: "torch" (transformers) or "onnx" (an exported folder)."""
        from emopillars.inference.onnx_model import OnnxModel

        return "onnx" if isinstance(self.model, OnnxModel) else "torch"

    def save_pretrained(self, path: str | Path) -> None:
        """A standard folder (weights, config with `emopillars` metadata, tokenizer) plus thresholds.json."""
        if self.backend == "onnx":
            raise EmopillarsError("an exported ONNX classifier is already a folder; copy it instead of saving it")
        self.save_metadata(path)
        self.model.save_pretrained(path)

    def save_metadata(self, path: str | Path, **extra: Any) -> None:
        """Everything but the weights: config.json (with the `emopillars` block plus `extra`), tokenizer,
        thresholds.json. `save_pretrained` adds the weights; `emopillars export` an ONNX graph."""
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        thresholds = {name: round(float(t), 4) for name, t in zip(self.labels, self.thresholds, strict=True)}
        self.model.config.emopillars = {
            "mode": self.mode,
            "problem_type": self.problem_type,
            "max_length": self.max_length,
            "thresholds": thresholds,
            **extra,
        }
        self.model.config.save_pretrained(folder)
        self.tokenizer.save_pretrained(folder)
        (folder / "thresholds.json").write_text(json.dumps(thresholds, indent=2) + "\n", encoding="utf-8")

    def _inputs(self, texts: str | list[str], contexts: str | list[str] | None) -> tuple[list[str], list[str] | None]:
        """Texts as a list and contexts as a matching list (or None), checked against the model's mode."""
        texts = [texts] if isinstance(texts, str) else list(texts)
        if isinstance(contexts, str):
            contexts = [contexts] * len(texts)
        if contexts is not None:
            if self.mode != "contextual":
                raise EmopillarsError("this model was trained without context (mode contextless); drop the context")
            if len(contexts) != len(texts):
                raise EmopillarsError(f"got {len(texts)} texts but {len(contexts)} contexts")
        return texts, contexts

    def predict_proba(
        self, texts: str | list[str], contexts: str | list[str] | None = None, batch_size: int = 64
    ) -> np.ndarray:
        """Probabilities (N, L): sigmoid per label (multi_label) or softmax (single_label)."""
        from emopillars.distill.metrics import probabilities

        texts, contexts = self._inputs(texts, contexts)
        if self.backend == "onnx":
            logits = self.model.predict_logits(texts, contexts, self.max_length, batch_size)
        else:
            from emopillars.distill.model import predict_logits

            logits = predict_logits(self.model, self.tokenizer, texts, contexts, self.max_length, batch_size)
        return probabilities(logits, self.problem_type == "single_label")

    def predict(
        self, texts: str | list[str], contexts: str | list[str] | None = None, batch_size: int = 64
    ) -> list[dict[str, Any]]:
        """One {"labels": [...], "scores": {label: probability}} per text (labels by tuned thresholds)."""
        from emopillars.distill.metrics import decide

        scores = self.predict_proba(texts, contexts, batch_size)
        chosen = decide(scores, self.thresholds, self.problem_type == "single_label")
        return [
            {
                "labels": [self.labels[j] for j in np.flatnonzero(row)],
                "scores": {name: round(float(s), 6) for name, s in zip(self.labels, probs, strict=True)},
            }
            for row, probs in zip(chosen, scores, strict=True)
        ]

    def predict_pipeline(
        self, texts: str | list[str], contexts: str | list[str] | None = None, batch_size: int = 64
    ) -> list[list[dict[str, Any]]]:
        """Per text, every label as {"label", "score"}, highest first: what
        `transformers.pipeline("text-classification", top_k=None)` returns (scores by the model's activation)."""
        scores = self.predict_proba(texts, contexts, batch_size)
        return [
            [{"label": self.labels[j], "score": float(row[j])} for j in np.argsort(-row, kind="stable")]
            for row in scores
        ]

    def explain(
        self,
        texts: str | list[str],
        contexts: str | list[str] | None = None,
        label: str | None = None,
        steps: int = 128,
    ) -> list[dict[str, Any]]:
        """Per text: {"text", "context", "explanations": [{"label", "score", "baseline_score", "delta",
        "words": [{"word", "start", "end", "attribution"}], "context_words": [...]}]}: Integrated Gradients
        (`inference/explain.py`) for `label` when given, else every predicted label, else the top-scoring one."""
        from emopillars.distill.metrics import decide
        from emopillars.inference.explain import attribute

        if self.backend == "onnx":
            raise EmopillarsError("explanations need the torch model: use the folder the export was made from")
        if label is not None and label not in self.labels:
            raise EmopillarsError(f"unknown label {label!r}; the model's labels are {list(self.labels)}")
        texts, contexts = self._inputs(texts, contexts)
        single = self.problem_type == "single_label"
        probs = self.predict_proba(texts, contexts)
        chosen = decide(probs, self.thresholds, single)
        targets = [
            [self.labels.index(label)] if label is not None else
            [int(j) for j in np.flatnonzero(row)] or [int(p.argmax())]
            for row, p in zip(chosen, probs, strict=True)
        ]  # fmt: skip
        ctx = contexts or [None] * len(texts)
        rows = list(zip(texts, ctx, targets, strict=True))
        attributions = attribute(self.model, self.tokenizer, rows, single, self.max_length, steps)
        return [
            {"text": text, "context": context, "explanations": [
                {"label": self.labels[j], "score": round(float(probs[i, j]), 6), **item}
                for j, item in zip(js, per_label, strict=True)
            ]}
            for i, ((text, context, js), per_label) in enumerate(zip(rows, attributions, strict=True))
        ]  # fmt: skip
