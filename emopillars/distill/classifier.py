"""`EmotionClassifier`: a trained emopillars model folder, ready to label texts.

Public API (stable):
    EmotionClassifier.from_pretrained(path_or_hub_id, device=None, revision=None) -> EmotionClassifier
    clf.predict(texts, contexts=None) -> list[{"labels": [...], "scores": {label: prob}}]
        labels: scores at or above each label's tuned threshold (multi_label), or the argmax
        (single_label); scores: every label's probability (sigmoid or softmax).
    clf.predict_proba(texts, contexts=None) -> np.ndarray (N, L)
    clf.save_pretrained(path)
    clf.predict_pipeline(texts, contexts=None) -> list[list[{"label", "score"}]]  # transformers' shape
    clf.labels, clf.thresholds (np.ndarray (L,)), clf.mode, clf.problem_type, clf.model, clf.tokenizer

The folder is a plain `save_pretrained` one: `transformers.pipeline("text-classification",
model=path, top_k=None)` loads it; `config.emopillars` holds mode, problem_type, thresholds and
max_length (thresholds also in thresholds.json).
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
        cls, path: str | Path, device: str | None = None, revision: str | None = None
    ) -> EmotionClassifier:
        """Load a model folder written by `save_pretrained`, or a Hub id (`org/name[@revision]`) through
        huggingface_hub's cache (any HF sequence classifier works: thresholds 0.5)."""
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        from emopillars.hub import resolve_model

        folder = resolve_model(path, revision)
        model = AutoModelForSequenceClassification.from_pretrained(folder)
        model.to(device or ("cuda" if torch.cuda.is_available() else "cpu")).eval()
        tokenizer = AutoTokenizer.from_pretrained(folder)
        meta = getattr(model.config, "emopillars", None) or {}
        thresholds = meta.get("thresholds")
        if thresholds is None and (folder / "thresholds.json").is_file():
            thresholds = json.loads((folder / "thresholds.json").read_text(encoding="utf-8"))
        labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
        vector = None if thresholds is None else np.array([thresholds.get(name, 0.5) for name in labels])
        clf = cls(model, tokenizer, vector, meta.get("mode", "contextless"), meta.get("max_length", 128))
        clf.path = folder
        return clf

    def save_pretrained(self, path: str | Path) -> None:
        """A standard folder (weights, config with `emopillars` metadata, tokenizer) plus thresholds.json."""
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        thresholds = {name: round(float(t), 4) for name, t in zip(self.labels, self.thresholds, strict=True)}
        self.model.config.emopillars = {
            "mode": self.mode,
            "problem_type": self.problem_type,
            "max_length": self.max_length,
            "thresholds": thresholds,
        }
        self.model.save_pretrained(folder)
        self.tokenizer.save_pretrained(folder)
        (folder / "thresholds.json").write_text(json.dumps(thresholds, indent=2) + "\n", encoding="utf-8")

    def predict_proba(
        self, texts: str | list[str], contexts: str | list[str] | None = None, batch_size: int = 64
    ) -> np.ndarray:
        """Probabilities (N, L): sigmoid per label (multi_label) or softmax (single_label)."""
        from emopillars.distill.metrics import probabilities
        from emopillars.distill.model import predict_logits

        texts = [texts] if isinstance(texts, str) else list(texts)
        if isinstance(contexts, str):
            contexts = [contexts] * len(texts)
        if contexts is not None:
            if self.mode != "contextual":
                raise EmopillarsError("this model was trained without context (mode contextless); drop the context")
            if len(contexts) != len(texts):
                raise EmopillarsError(f"got {len(texts)} texts but {len(contexts)} contexts")
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
