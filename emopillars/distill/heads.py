"""Classification heads beside transformers' own: the Tanh head (`--head tanh`).

`--head linear` is `AutoModelForSequenceClassification` (for BERT: dropout + a linear layer over
the pooler's dense+tanh of [CLS]). `--head tanh` is DistilBERT's sequence-classification head put
over any encoder's [CLS] hidden state, as a head of its own:

    [CLS] (B, H) -> pre_classifier Linear(H, H) -> Tanh -> Dropout -> classifier Linear(H, L)

The encoder's own pooler (BERT, RoBERTa) is dropped: it would be an unused, untrained second
projection (and unused parameters break data-parallel training). Both layers start as transformers
starts its layers: weights normal(0, initializer_range), biases zero.

A tanh folder holds `config.json` (the encoder's config with the labels and `emopillars_head:
"tanh"`) and `tanh_head_model.safetensors` (encoder and head weights). The file name differs from
transformers' `model.safetensors` on purpose: `AutoModelForSequenceClassification` and `pipeline`
fail on such a folder instead of silently loading the encoder under a random linear head;
`load_sequence_classifier` (used by `EmotionClassifier.from_pretrained`) loads either kind.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

WEIGHTS = "tanh_head_model.safetensors"
HEADS = ("linear", "tanh")


def head_of(config: Any) -> str:
    """The head a model config describes: "tanh" for folders written by `TanhHeadClassifier`, else "linear"."""
    return getattr(config, "emopillars_head", None) or "linear"


class TanhHeadClassifier(nn.Module):
    """An encoder (`AutoModel`) + the Tanh head; called like a transformers classifier (`.logits`).

    Args:
        encoder: the base model; its `config` must carry num_labels, id2label and problem_type.
        dropout: the head's dropout; default: the config's classifier_dropout, else its hidden dropout.
    """

    def __init__(self, encoder: nn.Module, dropout: float | None = None) -> None:
        super().__init__()
        config = encoder.config
        if getattr(encoder, "pooler", None) is not None:
            encoder.pooler = None  # [CLS] goes to our own dense+tanh
        self.encoder, self.config = encoder, config
        config.emopillars_head = "tanh"
        if dropout is None:
            dropout = getattr(config, "classifier_dropout", None)
        if dropout is None:
            dropout = getattr(config, "hidden_dropout_prob", 0.1)
        hidden = config.hidden_size
        self.pre_classifier = nn.Linear(hidden, hidden)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden, config.num_labels)
        for layer in (self.pre_classifier, self.classifier):
            nn.init.normal_(layer.weight, 0.0, getattr(config, "initializer_range", 0.02))
            nn.init.zeros_(layer.bias)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, **inputs: Any) -> Any:
        from transformers.modeling_outputs import SequenceClassifierOutput

        inputs = {k: v for k, v in inputs.items() if v is not None}  # DistilBERT takes no token_type_ids
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask, **inputs).last_hidden_state
        pooled = torch.tanh(self.pre_classifier(hidden[:, 0]))  # (B, H) from [CLS]
        return SequenceClassifierOutput(logits=self.classifier(self.dropout(pooled)))  # (B, L)

    def get_input_embeddings(self) -> nn.Module:
        return self.encoder.get_input_embeddings()

    def save_pretrained(self, path: str | Path) -> None:
        from safetensors.torch import save_file

        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        self.config.save_pretrained(folder)
        save_file({k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}, folder / WEIGHTS)

    @classmethod
    def from_pretrained(cls, path: str | Path, **config_kwargs: Any) -> TanhHeadClassifier:
        """A folder written by `save_pretrained`; `config_kwargs` (e.g. new labels) change the config first."""
        from safetensors.torch import load_file
        from transformers import AutoConfig, AutoModel

        config = AutoConfig.from_pretrained(path, **config_kwargs)
        model = cls(AutoModel.from_config(config))
        state = load_file(Path(path) / WEIGHTS)
        if config_kwargs:  # another label set: the encoder and the dense layer carry over, the output layer not
            state = {k: v for k, v in state.items() if not k.startswith("classifier.")}
        model.load_state_dict(state, strict=not config_kwargs)
        return model


def load_sequence_classifier(path: str | Path, device: str | None = None, **kwargs: Any) -> nn.Module:
    """A saved classifier folder with either head, in eval mode on `device`; `kwargs` go to transformers'
    `from_pretrained` (a tanh folder is always float32)."""
    from transformers import AutoConfig, AutoModelForSequenceClassification

    if head_of(AutoConfig.from_pretrained(path)) == "tanh":
        model: nn.Module = TanhHeadClassifier.from_pretrained(path)
    else:
        model = AutoModelForSequenceClassification.from_pretrained(path, **kwargs)
    return model.to(device or ("cuda" if torch.cuda.is_available() else "cpu")).eval()


def tanh_classifier(path: str, dropout: float | None, **config_kwargs: Any) -> nn.Module:
    """The encoder at `path` (a plain encoder, a linear-head classifier or a tanh folder) under a Tanh head.

    A tanh folder with the same number of labels keeps its whole head; otherwise the head is new.
    """
    from transformers import AutoConfig, AutoModel

    source = AutoConfig.from_pretrained(path)
    if head_of(source) == "tanh":
        same = source.num_labels == config_kwargs.get("num_labels", source.num_labels)
        model = TanhHeadClassifier.from_pretrained(path, **({} if same else config_kwargs))
        if same:
            for key, value in config_kwargs.items():
                setattr(model.config, key, value)
        if dropout is not None:
            model.dropout.p = dropout
        return model
    config = AutoConfig.from_pretrained(path, **config_kwargs)
    return TanhHeadClassifier(AutoModel.from_pretrained(path, config=config), dropout)
