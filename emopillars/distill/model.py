"""The student: any Hugging Face encoder under `AutoModelForSequenceClassification`.

For BERT-type encoders (the default all-MiniLM-L6-v2 is a `BertModel`) that class is exactly
dropout + a linear layer over the pooled [CLS] output, and its folders load in
`transformers.pipeline`. MiniLM ships pooler weights from its original pre-training (the
sentence-transformers objective never tuned them); they are fine-tuned with the rest.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch
from torch import nn

from emopillars.distill.heads import head_of, tanh_classifier
from emopillars.errors import EmopillarsError
from emopillars.sources import locate

log = logging.getLogger(__name__)

HeadInit = tuple[torch.Tensor, torch.Tensor]  # classifier weight (L, H), bias (L,)
HF_PROBLEM_TYPE = {"multi_label": "multi_label_classification", "single_label": "single_label_classification"}


def resolve_model_path(name_or_path: str | None) -> str:
    """None -> the embedded MiniLM; else `sources.locate`'s existing path or Hub id (a missing path is an error)."""
    if name_or_path is None:
        from emopillars.assets import embedder_path

        return embedder_path()
    return str(locate(name_or_path, "model folder"))


def head_linear(model: nn.Module) -> nn.Linear:
    """The output layer (L, H): the last Linear whose outputs are the labels (BERT `classifier`, RoBERTa `out_proj`)."""
    num_labels = model.config.num_labels
    linears = [m for m in model.modules() if isinstance(m, nn.Linear) and m.out_features == num_labels]
    assert linears, "no classification layer found"
    return linears[-1]


def load_classifier(
    name_or_path: str | None,
    labels: tuple[str, ...],
    problem_type: str,
    dropout: float | None = None,
    head_init: HeadInit | None = None,
    head: str | None = None,
) -> tuple[nn.Module, Any]:
    """Encoder + fresh (or `head_init`) head over `labels`, and its tokenizer.

    `head`: "linear" (`AutoModelForSequenceClassification`) or "tanh" (`heads.TanhHeadClassifier`);
    None: the source's (a tanh folder keeps its tanh head, e.g. when `finetune` starts from it).

    A source folder with another label set (e.g. a 28-label emopillars model fine-tuned onto
    ISEAR) keeps its encoder; its head is re-initialised unless `head_init` supplies the rows.
    """
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging

    path = resolve_model_path(name_or_path)
    try:
        source = AutoConfig.from_pretrained(path)
        tokenizer = AutoTokenizer.from_pretrained(path)
    except OSError as exc:
        raise EmopillarsError(f"cannot load model {path!r}: {exc}") from None
    kwargs: dict[str, Any] = {
        "num_labels": len(labels),
        "id2label": dict(enumerate(labels)),
        "label2id": {name: i for i, name in enumerate(labels)},
        "problem_type": HF_PROBLEM_TYPE[problem_type],
    }
    if dropout is not None:
        kwargs["classifier_dropout"] = dropout
    head = head or head_of(source)
    if head_of(source) == "tanh" and head != "tanh":
        raise EmopillarsError(f"{path} has a tanh head; train from it with --head tanh (or no --head)")
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the expected "classifier newly initialised" report is noise here
    try:
        if head == "tanh":
            model = tanh_classifier(path, dropout, **kwargs)
        else:
            model = AutoModelForSequenceClassification.from_pretrained(path, ignore_mismatched_sizes=True, **kwargs)
    finally:
        hf_logging.set_verbosity(verbosity)
    old_labels = [source.id2label[i] for i in sorted(source.id2label)] if getattr(source, "id2label", None) else []
    layer = head_linear(model)
    if head_init is not None:
        weight, bias = head_init
        if tuple(weight.shape) != tuple(layer.weight.shape) or tuple(bias.shape) != tuple(layer.bias.shape):
            shapes = f"{tuple(weight.shape)}, {tuple(bias.shape)}"
            raise ValueError(f"head_init shapes {shapes} do not match the head {tuple(layer.weight.shape)}")
        with torch.no_grad():
            layer.weight.copy_(weight)
            layer.bias.copy_(bias)
    elif getattr(source, "emopillars", None) and old_labels != list(labels):
        # Same size, other names would otherwise silently reuse unrelated rows.
        with torch.no_grad():
            layer.weight.normal_(0.0, getattr(model.config, "initializer_range", 0.02))
            layer.bias.zero_()
        log.info("label set differs from %s: classifier head re-initialised", path)
    model.config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def predict_logits(
    model: nn.Module,
    tokenizer: Any,
    texts: list[str],
    contexts: list[str] | None,
    max_length: int,
    batch_size: int = 64,
) -> np.ndarray:
    """Logits (N, L) in input order. The one inference path of training, metrics and `EmotionClassifier`.

    Rows are batched by length (less padding) and put back in order.
    """
    from emopillars.distill.batching import Collator, encode, length_order

    if not texts:
        return np.zeros((0, model.config.num_labels), dtype=np.float32)
    rows = encode(tokenizer, texts, contexts, max_length)
    device = next(model.parameters()).device
    collate = Collator.on(device, tokenizer.pad_token_id or 0, max_length)
    out = np.empty((len(rows), model.config.num_labels), dtype=np.float32)
    was_training = model.training
    model.eval()
    with torch.inference_mode(), torch.autocast(device.type, torch.bfloat16, enabled=device.type == "cuda"):
        for idx in length_order([len(r["input_ids"]) for r in rows], batch_size):
            batch = {k: v.to(device) for k, v in collate([rows[i] for i in idx]).items()}
            out[idx] = model(**batch).logits.float().cpu().numpy()
    model.train(was_training)
    return out
