"""The `emopillars` command line: thin typer commands over the Python API (heavy imports inside)."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from emopillars.errors import EmopillarsError

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)

ConfigOpt = Annotated[Path | None, typer.Option("--config", help="JSON/YAML file setting any option; flags win.")]


@app.callback()
def _root(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log at DEBUG level.")] = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )


@app.command()
def models(as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False) -> None:
    """Prepare (once) and list the embedded default models."""
    from emopillars.assets import prepare_models

    assets = prepare_models()
    if as_json:
        typer.echo(json.dumps([a.model_dump() for a in assets]))
    else:
        for a in assets:
            typer.echo(f"{a.role:<10} {a.name:<28} {a.path}")


# --- synth (issue 2) ---------------------------------------------------------------------------


@app.command()
def synth(
    corpus: Annotated[str | None, typer.Option(help="Folder of .txt, .jsonl, or HF dataset id/path.")] = None,
    out: Annotated[Path | None, typer.Option(help="Output folder (default runs/synth).")] = None,
    backend: Annotated[str | None, typer.Option(help="vllm | openai | transformers.")] = None,
    model: Annotated[str | None, typer.Option(help="Model id or path (default: embedded SmolLM2).")] = None,
    base_url: Annotated[str | None, typer.Option(help="OpenAI-compatible server URL.")] = None,
    max_passages: Annotated[int | None, typer.Option(help="Use at most N passages.")] = None,
    contextless_per_example: Annotated[int | None, typer.Option(help="Rewrites per example.")] = None,
    dedup_threshold: Annotated[float | None, typer.Option(help="Cosine similarity in (0, 1].")] = None,
    seed: Annotated[int | None, typer.Option()] = None,
    text_field: Annotated[str | None, typer.Option(help="Text field of a .jsonl/HF corpus.")] = None,
    max_characters: Annotated[int | None, typer.Option(help="Characters per passage.")] = None,
    emotions_per_character: Annotated[int | None, typer.Option(help="Target emotions per character.")] = None,
    target_threshold: Annotated[float | None, typer.Option(help="Min blind score of the target.")] = None,
    max_retries: Annotated[int | None, typer.Option(help="Retries of unusable outputs.")] = None,
    temperature: Annotated[float | None, typer.Option()] = None,
    dtype: Annotated[str | None, typer.Option(help="auto | float32 | bfloat16 | float16.")] = None,
    tensor_parallel_size: Annotated[int | None, typer.Option()] = None,
    gpu_memory_utilization: Annotated[float | None, typer.Option()] = None,
    max_model_len: Annotated[int | None, typer.Option()] = None,
    concurrency: Annotated[int | None, typer.Option(help="Parallel requests (openai).")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Prompts per batch (transformers).")] = None,
    config: ConfigOpt = None,
) -> None:
    """Synthesize a narrative-grounded emotion corpus with an LLM."""
    flags = {k: v for k, v in locals().items() if k != "config"}  # every flag is a SynthConfig field
    from emopillars.config import load_config
    from emopillars.synth.config import SynthConfig
    from emopillars.synth.pipeline import synthesize

    report = synthesize(load_config(SynthConfig, config, flags))
    typer.echo(report.summary())
    if not sum(report.examples.values()):
        raise EmopillarsError(f"no example survived the filters; see {report.out}/report.json for what was dropped")


# --- train / predict (issue 3) -------------------------------------------------------------------


@app.command()
def train(
    data: Annotated[str | None, typer.Option(help="synth folder, .jsonl/.csv, or HF dataset id/folder.")] = None,
    out: Annotated[Path | None, typer.Option(help="Output model folder (default runs/train).")] = None,
    mode: Annotated[str | None, typer.Option(help="contextless | contextual.")] = None,
    model: Annotated[str | None, typer.Option(help="Encoder id or path (default: embedded MiniLM).")] = None,
    problem_type: Annotated[str | None, typer.Option(help="multi_label | single_label.")] = None,
    epochs: Annotated[float | None, typer.Option()] = None,
    max_steps: Annotated[int | None, typer.Option(help="Optimizer steps (overrides epochs).")] = None,
    batch_size: Annotated[int | None, typer.Option()] = None,
    eval_batch_size: Annotated[int | None, typer.Option()] = None,
    grad_accum: Annotated[int | None, typer.Option(help="Micro-batches per step.")] = None,
    lr: Annotated[float | None, typer.Option()] = None,
    weight_decay: Annotated[float | None, typer.Option()] = None,
    schedule: Annotated[str | None, typer.Option(help="linear | cosine | constant.")] = None,
    warmup_ratio: Annotated[float | None, typer.Option()] = None,
    clip_grad: Annotated[float | None, typer.Option(help="Max grad norm (0: off).")] = None,
    max_length: Annotated[int | None, typer.Option(help="Token limit.")] = None,
    dropout: Annotated[float | None, typer.Option(help="Classifier dropout.")] = None,
    seed: Annotated[int | None, typer.Option()] = None,
    loss: Annotated[str | None, typer.Option(help="bce | focal.")] = None,
    focal_gamma: Annotated[float | None, typer.Option()] = None,
    focal_alpha: Annotated[bool | None, typer.Option(help="Focal per-label alpha.")] = None,
    pos_weight: Annotated[bool | None, typer.Option(help="Per-label positive weight.")] = None,
    label_smoothing: Annotated[float | None, typer.Option()] = None,
    ortho_weight: Annotated[float | None, typer.Option(help="Head orthogonality lambda.")] = None,
    teacher: Annotated[str | None, typer.Option(help="Teacher model folder (KD).")] = None,
    kd_weight: Annotated[float | None, typer.Option()] = None,
    temperature: Annotated[float | None, typer.Option()] = None,
    rounds: Annotated[int | None, typer.Option(help="Pseudo-label rounds.")] = None,
    unlabeled: Annotated[str | None, typer.Option(help="Unlabelled pool .txt/.jsonl/.csv.")] = None,
    pseudo_threshold: Annotated[float | None, typer.Option()] = None,
    target_threshold: Annotated[float | None, typer.Option(help="Soft score counted as a label.")] = None,
    eval_every: Annotated[int | None, typer.Option(help="Evaluate every N steps.")] = None,
    save_every: Annotated[int | None, typer.Option(help="Checkpoint every N steps.")] = None,
    patience: Annotated[int | None, typer.Option(help="Early-stopping patience (evaluations).")] = None,
    group_by_length: Annotated[bool | None, typer.Option()] = None,
    weighted_sampling: Annotated[bool | None, typer.Option()] = None,
    mixed_precision: Annotated[str | None, typer.Option(help="auto | no | bf16 | fp16.")] = None,
    resume: Annotated[bool | None, typer.Option(help="Continue from --out/checkpoints.")] = None,
    keep_checkpoints: Annotated[bool | None, typer.Option()] = None,
    progress: Annotated[bool | None, typer.Option()] = None,
    config: ConfigOpt = None,
) -> None:
    """Distil labelled emotion data into a small encoder classifier (a save_pretrained folder)."""
    flags = {k: v for k, v in locals().items() if k != "config"}  # every flag is a TrainConfig field
    from emopillars.config import load_config
    from emopillars.distill.config import TrainConfig
    from emopillars.distill.metrics import format_table
    from emopillars.distill.trainer import train as run

    cfg = load_config(TrainConfig, config, flags)
    report = run(cfg)
    for split in ("validation", "test"):
        if report[split]:
            typer.echo(format_table(report[split], split))
    for r in report.get("rounds", []):
        typer.echo(f"round {r['round']}: +{r['pseudo_labelled_added']} pseudo-labelled, "
                   f"validation macro-F1 {r['validation']['macro_f1']:.4f}")  # fmt: skip
    t = report["training"]
    typer.echo(f"saved {cfg.out} ({t['steps']} steps, {t['samples_per_s']} samples/s, {t['wall_seconds']} s)")


@app.command()
def predict(
    texts: Annotated[list[str] | None, typer.Argument(help="Texts to label.")] = None,
    model: Annotated[Path, typer.Option(help="Model folder written by `emopillars train`.")] = Path("runs/train"),
    context: Annotated[str | None, typer.Option(help="Context for every text (contextual models).")] = None,
    input: Annotated[Path | None, typer.Option("--input", help=".txt (one per line), .jsonl or .csv.")] = None,
    output: Annotated[Path | None, typer.Option(help="Write JSONL here instead of printing.")] = None,
    batch_size: Annotated[int, typer.Option(min=1)] = 64,
    explain: Annotated[bool, typer.Option(help="Add word attributions (Integrated Gradients).")] = False,
) -> None:
    """Label texts: one JSON object per text with thresholded `labels` and all `scores`."""
    from emopillars.distill.classifier import EmotionClassifier
    from emopillars.distill.data import read_texts

    items, contexts = list(texts or []), None
    if input is not None:
        items, contexts = read_texts(input)
    if not items:
        raise EmopillarsError("nothing to predict: give TEXT arguments or --input FILE")
    if context is not None:
        contexts = [context] * len(items)
    clf = EmotionClassifier.from_pretrained(model)
    rows = [{"text": t, **p} for t, p in zip(items, clf.predict(items, contexts, batch_size), strict=True)]
    if explain:
        for row, why in zip(rows, clf.explain(items, contexts), strict=True):
            row["explanations"] = why["explanations"]
    lines = [json.dumps(row) for row in rows]
    if output is None:
        typer.echo("\n".join(lines))
    else:
        output.write_text("\n".join(lines) + "\n", encoding="utf-8")
        typer.echo(f"wrote {len(lines)} predictions to {output}")


@app.command()
def export(
    model: Annotated[Path, typer.Option(help="Model folder written by `emopillars train`.")] = Path("runs/train"),
    out: Annotated[Path, typer.Option(help="Folder for the exported model.")] = Path("runs/onnx"),
    format: Annotated[str, typer.Option("--format", help="onnx (the only format).")] = "onnx",
    quantize: Annotated[str | None, typer.Option(help="int8: dynamically quantized weights.")] = None,
) -> None:
    """Export a model folder to ONNX for onnxruntime (`predict --model OUT` runs it without torch)."""
    from emopillars.distill.export import export_onnx

    if format != "onnx":
        raise EmopillarsError(f"--format {format!r} is not supported; the only format is 'onnx'")
    summary = export_onnx(model, out, quantize)
    typer.echo(f"exported {model} -> {out} ({summary['quantize'] or 'fp32'}, {summary['onnx_bytes'] / 2**20:.1f} MB)")


# --- demo (issue 9) ------------------------------------------------------------------------------


@app.command()
def demo(
    model: Annotated[str | None, typer.Option(help="Model folder (torch or exported ONNX).")] = None,
    data: Annotated[str | None, typer.Option(help="A `synth` output folder to browse.")] = None,
    host: Annotated[str, typer.Option(help="Interface to bind; 0.0.0.0 exposes it to the network.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 7860,
) -> None:
    """A local web page: classify a sentence (scores, labels, word attributions) and browse a synth corpus."""
    from emopillars.demo import launch

    launch(model, data, host, port)


# --- finetune / evaluate (issue 4) ---------------------------------------------------------------

TaskOpt = Annotated[str | None, typer.Option(help="goemotions | isear | iemocap | emocontext.")]
TextColumnOpt = Annotated[str | None, typer.Option(help="Column holding the text (default: the usual).")]
LabelColumnOpt = Annotated[str | None, typer.Option(help="Column holding the label (default: the usual).")]
ContextTurnsOpt = Annotated[int | None, typer.Option(help="IEMOCAP: previous turns as context (3).")]
SplitSeedOpt = Annotated[int | None, typer.Option(help="Seed of the split where a release has none (0).")]
HubConfigOpt = Annotated[str | None, typer.Option(help="Hugging Face hub configuration name.")]


def _with_train_flags(command: typer.models.CommandFunctionType) -> typer.models.CommandFunctionType:
    """Give `command` every flag of `train` it lacks, so all trainer options carry over unchanged."""
    import inspect

    own = inspect.signature(command, eval_str=True).parameters
    extra = [
        p.replace(kind=inspect.Parameter.KEYWORD_ONLY)
        for name, p in inspect.signature(train, eval_str=True).parameters.items()
        if name not in own and name != "problem_type"  # the task fixes the problem type
    ]
    mine = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own.values() if p.kind != p.VAR_KEYWORD]
    command.__signature__ = inspect.Signature([*mine, *extra])
    return command


@app.command()
@_with_train_flags
def finetune(
    task: TaskOpt = None,
    data: Annotated[str | None, typer.Option(help="Dataset file, folder of split files, or HF id.")] = None,
    init: Annotated[str | None, typer.Option(help="Pretrained emopillars 28-label model folder.")] = None,
    out: Annotated[Path | None, typer.Option(help="Output model folder (default runs/finetune).")] = None,
    head_init: Annotated[str | None, typer.Option(help="mapped (from --init's head) | random.")] = None,
    text_column: TextColumnOpt = None,
    label_column: LabelColumnOpt = None,
    context_turns: ContextTurnsOpt = None,
    split_seed: SplitSeedOpt = None,
    hub_config: HubConfigOpt = None,
    config: ConfigOpt = None,
    **train_flags: object,
) -> None:
    """Fine-tune a model on GoEmotions, ISEAR, IEMOCAP or EmoContext (takes every `train` option too)."""
    flags = {k: v for k, v in locals().items() if k not in {"config", "train_flags"}} | train_flags
    from emopillars.config import load_config
    from emopillars.downstream.config import FinetuneConfig
    from emopillars.downstream.finetune import finetune as run
    from emopillars.downstream.metrics import comparison_table
    from emopillars.downstream.tasks import get_task

    cfg = load_config(FinetuneConfig, config, flags)
    report = run(cfg)
    if report.get("task_test"):
        typer.echo(comparison_table(get_task(cfg.task), report["task_test"]))
    t = report["training"]
    typer.echo(f"saved {cfg.out} ({report['head_init']} head, {t['steps']} steps, {t['wall_seconds']} s)")


@app.command()
def evaluate(
    model: Annotated[str | None, typer.Option(help="Model folder (from train or finetune).")] = None,
    data: Annotated[str | None, typer.Option(help="A public release (with --task) or any `train` input.")] = None,
    task: TaskOpt = None,
    split: Annotated[str | None, typer.Option(help="train | validation | test (default test).")] = None,
    output: Annotated[Path | None, typer.Option(help="Write the metrics as JSON here.")] = None,
    batch_size: Annotated[int | None, typer.Option()] = None,
    text_column: TextColumnOpt = None,
    label_column: LabelColumnOpt = None,
    context_turns: ContextTurnsOpt = None,
    split_seed: SplitSeedOpt = None,
    hub_config: HubConfigOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Score a model on a dataset split with the literature's metrics, beside the published numbers."""
    flags = {k: v for k, v in locals().items() if k != "config"}  # every flag is an EvaluateConfig field
    from emopillars.config import load_config
    from emopillars.downstream.config import EvaluateConfig
    from emopillars.downstream.evaluate import evaluate as run
    from emopillars.downstream.metrics import comparison_table
    from emopillars.downstream.tasks import get_task

    cfg = load_config(EvaluateConfig, config, flags)
    result = run(cfg)
    typer.echo(f"{result['model']} on {result['data']} [{result['split']}], n={result['n']}")
    typer.echo(comparison_table(get_task(cfg.task) if cfg.task else None, result["metrics"]))
    if cfg.output:
        typer.echo(f"wrote {cfg.output}")


def main() -> None:
    """Console entry point: user errors become one red line and exit code 1."""
    try:
        app(standalone_mode=False)
    except EmopillarsError as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        sys.exit(1)
    except (typer.Abort, KeyboardInterrupt):
        typer.secho("aborted", fg="red", err=True)
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:  # click usage errors carry their own exit code
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise


if __name__ == "__main__":
    main()
