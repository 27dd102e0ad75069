"""The `emopillars` command line: thin typer commands over the Python API (heavy imports inside).

Every command's options come from its pydantic config (`emopillars.options`): one definition, real
defaults and choices in `--help`, a `--config` file below the flags the user types.
"""

from __future__ import annotations

import errno
import json
import re
import signal
import sys
from pathlib import Path
from typing import Annotated

import typer

from emopillars import __version__
from emopillars.console import setup_logging
from emopillars.distill.config import TrainConfig, TuneConfig
from emopillars.downstream.config import TRAIN_ONLY, EvaluateConfig, FinetuneConfig
from emopillars.downstream.tasks import titles
from emopillars.errors import EmopillarsError, require
from emopillars.hub import HubOptions
from emopillars.inference.config import DemoConfig, ExportConfig, PredictConfig
from emopillars.options import config_options
from emopillars.synth.config import SynthConfig, TeacherEvalConfig

HELP = """Emotion corpora written and labelled by an LLM, and small, fast emotion classifiers distilled from them.

\b
The usual path:
  emopillars synth --out runs/demo                        # a corpus (embedded SmolLM2 on the CPU by default)
  emopillars train --data runs/demo --out runs/student    # an encoder distilled from it
  emopillars predict --model runs/student "I can't believe you remembered!"
"""
app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None, help=HELP)
OUTPUT_ALIAS = {"out": ("--output",)}  # the old spelling, hidden: scripts that use it keep working
LLM_ALIASES = OUTPUT_ALIAS | {"transformers_batch_size": ("--batch-size",)}  # it applies to that backend only
DISK_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}  # one line, not a traceback


def _version(value: bool) -> None:
    if value:
        typer.echo(f"emopillars {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logs, third-party logs, tables.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Warnings and errors only.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    setup_logging(verbose, quiet)


def _verbose() -> bool:
    """-v before or after the subcommand (both set the project's logger to DEBUG)."""
    import logging

    return logging.getLogger("emopillars").getEffectiveLevel() <= logging.DEBUG


def _push(folder: Path, hub: HubOptions, kind: str) -> None:
    if hub.push_to_hub:
        from emopillars.hub import push

        typer.echo(f"pushed to {push(folder, hub.push_to_hub, hub.hub_private, kind)}")  # type: ignore[arg-type]


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


@app.command()
@config_options(aliases=LLM_ALIASES)
def synth(cfg: SynthConfig, hub: HubOptions) -> None:
    """Synthesize a narrative-grounded emotion corpus with an LLM."""
    from emopillars.synth.pipeline import synthesize
    from emopillars.synth.report import empty_run_message

    report = synthesize(cfg)
    typer.echo(report.summary())
    if not sum(report.examples.values()):
        raise EmopillarsError(empty_run_message(report))
    _push(cfg.out, hub, "dataset")


@app.command("teacher-eval")
@config_options(aliases=LLM_ALIASES)
def teacher_eval(cfg: TeacherEvalConfig) -> None:
    """Check the teacher before the big run: label human-labelled utterances as synth would and score them."""
    from emopillars.synth.teacher_eval import summary, teacher_eval

    typer.echo(summary(teacher_eval(cfg), cfg.out))


@app.command()
@config_options(aliases=OUTPUT_ALIAS)
def train(cfg: TrainConfig, hub: HubOptions) -> None:
    """Distil labelled emotion data into a small encoder classifier (a save_pretrained folder)."""
    from emopillars.distill.metrics import format_table
    from emopillars.distill.multitask import train_multitask
    from emopillars.distill.trainer import train as run

    result = (train_multitask if cfg.task else run)(cfg)  # several --task sets: one head each
    if not result.main_process:
        return  # under a multi-process launch the main process reports and pushes
    tasks = result.report.get("tasks") or {"": result.report}  # multi-task: every task's figures
    for name, figures in tasks.items():
        for split in ("validation", "test"):
            if figures[split]:
                typer.echo(format_table(figures[split], f"{name} {split}".strip(), per_label=_verbose()))
    for r in result.rounds:
        typer.echo(f"round {r['round']}: +{r['pseudo_labelled_added']} pseudo-labelled, "
                   f"validation macro-F1 {r['validation']['macro_f1']:.4f}")  # fmt: skip
    t = result.training
    typer.echo(f"saved {cfg.out} ({t['steps']} steps, {t['samples_per_s']} samples/s, {t['wall_seconds']} s)")
    _push(cfg.out, hub, "model")


@app.command()
@config_options()
def tune(opts: TuneConfig, cfg: TrainConfig) -> None:
    """Search train's options with Optuna (TPE, pruning on validation macro-F1); a killed study resumes.

    Every train option is passed to each trial; --space FILE names the searched ones. --n-trials counts
    the study's finished or pruned trials in all, so a rerun completes the total instead of adding more;
    --seed also seeds the sampler.
    """
    require("optuna", "tune", '"emopillars[tune]"')
    from emopillars.distill.tune import tune as run

    typer.echo(run(opts, cfg).summary())


@app.command()
@config_options(aliases=OUTPUT_ALIAS)
def predict(
    cfg: PredictConfig, texts: Annotated[list[str] | None, typer.Argument(help="Texts to label.")] = None
) -> None:
    """Label texts: one JSON object per text with thresholded `labels` and all `scores`."""
    from emopillars.inference.stream import predict_stream

    written, skipped = predict_stream(cfg, list(texts or []), typer.echo)
    if cfg.out is not None:
        kept = f" after the {skipped} already there" if skipped else ""
        typer.echo(f"wrote {written} predictions to {cfg.out}{kept}")


@app.command()
@config_options(aliases=OUTPUT_ALIAS)
def export(cfg: ExportConfig) -> None:
    """Export a model folder to ONNX for onnxruntime (`predict --model OUT` runs it without torch)."""
    from emopillars.inference.export import export_onnx

    summary = export_onnx(cfg.model, cfg.out, cfg.quantize)
    size = summary["onnx_bytes"] / 2**20
    typer.echo(f"exported {cfg.model} -> {cfg.out} ({summary['quantize'] or 'fp32'}, {size:.1f} MB)")


@app.command()
@config_options()
def demo(cfg: DemoConfig) -> None:
    """A local web page: classify a sentence (scores, labels, word attributions) and browse a synth corpus.

    The page offers only the models and runs named by --model and --data (each repeatable), unless --allow-paths.
    """
    from emopillars.demo import launch

    launch(cfg)


@app.command(help=f"Fine-tune a model on {titles()} (takes every `train` option too).")
@config_options(exclude=("problem_type", "labels", *TRAIN_ONLY), aliases=OUTPUT_ALIAS)
def finetune(cfg: FinetuneConfig, hub: HubOptions) -> None:
    """Fine-tune a model on a downstream benchmark of `TASKS` (the help text names them)."""
    from emopillars.downstream.finetune import finetune as run
    from emopillars.downstream.references import comparison_table
    from emopillars.downstream.tasks import get_task

    result = run(cfg)
    if result.task_test:
        typer.echo(comparison_table(get_task(cfg.task), result.task_test))
    t = result.training
    typer.echo(f"saved {cfg.out} ({result.report['head_init']} head, {t['steps']} steps, {t['wall_seconds']} s)")
    _push(cfg.out, hub, "model")


@app.command()
@config_options(aliases=OUTPUT_ALIAS)
def evaluate(cfg: EvaluateConfig) -> None:
    """Score a model on a dataset split with the literature's metrics, beside the published numbers."""
    from emopillars.downstream.evaluate import evaluate as run
    from emopillars.downstream.references import comparison_table
    from emopillars.downstream.tasks import get_task

    result = run(cfg)
    typer.echo(f"{result['model']} on {result['data']} [{result['split']}], n={result['n']}")
    typer.echo(comparison_table(get_task(cfg.task) if cfg.task else None, result["metrics"]))
    if cfg.out:
        typer.echo(f"wrote {cfg.out}")


@app.command()
def push(
    run_dir: Annotated[Path, typer.Argument(help="A model folder (train/finetune) or a synth run folder.")],
    repo_id: Annotated[str, typer.Argument(help="Hub repo, org/name (created when missing).")],
    private: Annotated[bool, typer.Option(help="Create the repo as private.")] = False,
) -> None:
    """Upload a finished run to the Hugging Face Hub: a model (folder + card) or a corpus (dataset + card + plots)."""
    from emopillars.hub import push as run

    typer.echo(f"pushed to {run(run_dir, repo_id, private)}")


def _where(exc: OSError) -> str:
    """The file a disk error names, else the command's output folder (`options.config_options` notes it)."""
    return exc.filename or next(iter(getattr(exc, "__notes__", ())), "the output")


def _one_line(message: str) -> str:
    return re.sub(r"\s+", " ", message).strip()


INTERRUPTED = 128 + signal.SIGINT  # Ctrl-C's exit code


class Stopped(SystemExit):
    """SIGTERM or SIGHUP (`kill`, a closed terminal, a scheduler's preemption), raised in the main thread.

    Without it Python dies at once, and the vLLM engine's process outlives ours, busy. As a `SystemExit` it stops
    an asyncio loop at once, passes typer by (which would turn an interrupt into a silent exit code) and runs every
    `finally` on its way: the engine is shut down, each call already answered is kept for the rerun.
    """

    def __init__(self, signum: int):
        super().__init__(128 + signum)
        self.signal = signal.Signals(signum).name


def _stop(signum: int, frame: object) -> None:
    raise Stopped(signum)


def main() -> None:
    """Console entry point: usage errors are one line and exit 2, user errors one red line and exit 1; SIGTERM and
    SIGHUP stop a command as Ctrl-C does, with 128 + the signal's number."""
    from typer import _click  # typer 0.29 vendors click: its errors are not `click.ClickException`s

    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _stop)
    try:
        code = app(standalone_mode=False)  # --help and --version return 0 here
    except EmopillarsError as exc:
        typer.secho(f"error: {_one_line(str(exc))}", fg="red", err=True)
        sys.exit(1)
    except _click.exceptions.NoArgsIsHelpError as exc:  # bare `emopillars`: the help, as click shows it
        typer.echo(exc.format_message(), err=True)
        sys.exit(exc.exit_code)
    except _click.exceptions.ClickException as exc:
        typer.secho(f"error: {_one_line(exc.format_message())}", fg="red", err=True)
        sys.exit(exc.exit_code)
    except OSError as exc:  # a full or read-only disk under --out: one line; files already written stay whole
        if exc.errno not in DISK_ERRORS:
            raise
        typer.secho(f"error: cannot write {_where(exc)}: {exc.strerror}", fg="red", err=True)
        sys.exit(1)
    except Stopped as exc:
        typer.secho(f"stopped by {exc.signal}", fg="red", err=True)
        sys.exit(exc.code)
    except (typer.Abort, KeyboardInterrupt):
        code = INTERRUPTED
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    if code == INTERRUPTED:  # typer answers Ctrl-C inside a command with this code rather than raising
        typer.secho("aborted", fg="red", err=True)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
