"""The `emopillars` command line: thin typer commands over the Python API (heavy imports inside)."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from emopillars.errors import EmopillarsError

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)

ConfigOpt = Annotated[Optional[Path], typer.Option("--config", help="JSON/YAML file setting any option; flags win.")]


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
