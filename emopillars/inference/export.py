"""`emopillars export`: a trained model folder -> an ONNX folder that runs on onnxruntime.

`optimum`'s exporter (optimum-onnx 0.1) requires transformers < 4.58 and cannot sit beside the
transformers 5.x this project needs, so the graph comes from `torch.onnx.export` (the TorchScript
exporter: the dynamo one needs `onnxscript`, and both give the same graph for BERT-type encoders)
with dynamic batch and sequence axes, and int8 weights from `onnxruntime.quantization.quantize_dynamic`.

The folder keeps everything `EmotionClassifier` needs: `config.json` (labels, problem type and the
`emopillars` block: mode, thresholds, max_length, plus `export`: format, quantize, opset, source),
`thresholds.json`, the tokenizer files (`tokenizer.json` is what the runtime reads) and `model.onnx`.
"""

from __future__ import annotations

import logging
import tempfile
import warnings
from pathlib import Path
from typing import Any

from emopillars.errors import EmopillarsError
from emopillars.inference.onnx_model import ONNX_FILE

log = logging.getLogger(__name__)

OPSET = 17
QUANTIZE = ("int8",)


def export_onnx(model_dir: str | Path, out: str | Path, quantize: str | None = None) -> dict[str, Any]:
    """Export `model_dir` to `out` (fp32, or dynamically quantized int8 weights); returns a summary."""
    import torch

    from emopillars.inference.classifier import EmotionClassifier

    if quantize is not None and quantize not in QUANTIZE:
        raise EmopillarsError(f"--quantize {quantize!r} is not supported; choose one of {list(QUANTIZE)}")
    out = Path(out)
    if out.resolve() == Path(model_dir).resolve():
        raise EmopillarsError(f"--out {out} is the model folder itself; choose another folder")
    clf = EmotionClassifier.from_pretrained(model_dir, device="cpu")
    if clf.backend == "onnx":
        raise EmopillarsError(f"{model_dir} is already an exported ONNX folder; export the torch model folder")
    model, tokenizer = clf.model, clf.tokenizer
    sample = tokenizer(["an example to trace", "and a second, longer one"], ["with context"] * 2,
                       padding=True, return_tensors="pt")  # fmt: skip
    names = list(sample.keys())  # the tokenizer's inputs: BERT has token_type_ids, RoBERTa does not

    class Logits(torch.nn.Module):
        """Positional inputs in `names` order -> logits: the exporter traces positional arguments."""

        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
            return self.model(**dict(zip(names, inputs, strict=True))).logits

    out.mkdir(parents=True, exist_ok=True)
    wrapper = Logits().eval()  # eval on the wrapper too: the exporter would trace dropout otherwise
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / ONNX_FILE
        dynamic = {name: {0: "batch", 1: "sequence"} for name in names} | {"logits": {0: "batch"}}
        with warnings.catch_warnings():  # trace warnings on shape checks; the agreement tests vary both axes
            warnings.simplefilter("ignore")
            args = tuple(sample[n] for n in names)
            torch.onnx.export(wrapper, args, str(fp32), input_names=names, output_names=["logits"],
                              dynamic_axes=dynamic, opset_version=OPSET, dynamo=False)  # fmt: skip
        if quantize == "int8":
            from onnxruntime.quantization import QuantType, quantize_dynamic

            quantize_dynamic(fp32, out / ONNX_FILE, weight_type=QuantType.QInt8)
        else:
            fp32.replace(out / ONNX_FILE)
    clf.save_metadata(out, export={"format": "onnx", "quantize": quantize, "opset": OPSET, "source": str(model_dir)})
    size = (out / ONNX_FILE).stat().st_size
    log.info("exported %s -> %s (%.1f MB)", model_dir, out, size / 2**20)
    return {"out": str(out), "quantize": quantize, "onnx_bytes": size, "mode": clf.mode, "labels": len(clf.labels)}
