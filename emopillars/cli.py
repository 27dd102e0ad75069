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

# --- finetune / evaluate (issue 4) ---------------------------------------------------------------


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
