"""An exported classifier on onnxruntime: the tokenizer's own `tokenizer.json` and one ONNX graph.

Neither torch nor transformers is imported on this path (importing transformers' AutoTokenizer
alone costs ~4 s here, as it pulls torch and scikit-learn), so a one-sentence `predict` on an
exported folder starts in about a second. `emopillars/inference/export.py` writes the folders.

Tokenization mirrors `distill.batching.encode`: the same backend tokenizer, truncation to
`max_length`, pairs cut on the context side first and on both sides when the utterance alone is
too long.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from emopillars.distill.batching import length_order
from emopillars.errors import EmopillarsError

ONNX_FILE = "model.onnx"


@dataclass
class OnnxConfig:
    """The parts of a transformers config that `EmotionClassifier` reads."""

    id2label: dict[int, str]
    num_labels: int
    problem_type: str | None


class OnnxModel:
    """An `InferenceSession` plus the tokenizer and label config of an exported folder."""

    def __init__(self, folder: str | Path) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        folder = Path(folder)
        for name in (ONNX_FILE, "tokenizer.json", "config.json"):
            if not (folder / name).is_file():
                raise EmopillarsError(f"exported model folder {folder} has no {name}")
        raw = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        id2label = {int(k): v for k, v in raw["id2label"].items()}
        self.config = OnnxConfig(id2label, len(id2label), raw.get("problem_type"))
        self.pad_id = int(raw.get("pad_token_id") or 0)
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.session = ort.InferenceSession(str(folder / ONNX_FILE), providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]

    def encode(self, texts: list[str], contexts: list[str] | None, max_length: int) -> list[Any]:
        """One `tokenizers.Encoding` per row, unpadded (the rules of `distill.batching.encode`)."""
        tok = self.tokenizer
        if contexts is None:
            tok.enable_truncation(max_length)
            return tok.encode_batch(texts)
        tok.enable_truncation(max_length, strategy="only_second")
        try:
            return tok.encode_batch(list(zip(texts, contexts, strict=True)))
        except Exception:  # an utterance longer than the limit alone: rows one by one, cutting both sides there
            rows = []
            for pair in zip(texts, contexts, strict=True):
                try:
                    rows.append(tok.encode(*pair))
                except Exception:
                    tok.enable_truncation(max_length, strategy="longest_first")
                    rows.append(tok.encode(*pair))
                    tok.enable_truncation(max_length, strategy="only_second")
            return rows

    def predict_logits(
        self, texts: list[str], contexts: list[str] | None, max_length: int, batch_size: int = 64
    ) -> np.ndarray:
        """Logits (N, L) in input order (the signature of `distill.model.predict_logits` without the model)."""
        out = np.empty((len(texts), self.config.num_labels), dtype=np.float32)
        if not texts:
            return out
        rows = self.encode(texts, contexts, max_length)
        for idx in length_order([len(r.ids) for r in rows], batch_size):
            width = max(len(rows[i].ids) for i in idx)
            feeds = {name: np.zeros((len(idx), width), dtype=np.int64) for name in self.input_names}
            if "input_ids" in feeds:
                feeds["input_ids"][:] = self.pad_id
            for b, i in enumerate(idx):
                row = rows[i]
                n = len(row.ids)
                values = {"input_ids": row.ids, "attention_mask": row.attention_mask, "token_type_ids": row.type_ids}
                for name in self.input_names:
                    feeds[name][b, :n] = values[name]
            out[idx] = self.session.run(["logits"], feeds)[0]
        return out
