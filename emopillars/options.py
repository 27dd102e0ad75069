"""CLI options generated from the pydantic configs, so every option is defined once (in the config).

A command declares which configs it takes as parameters annotated with a config class; `config_options`
replaces each such parameter by one `--field-name` option per field of the class (type, default,
choices from `Literal`, help from `Field(description=...)`), adds `--config FILE`, `-v`/`-q` and
`--progress/--no-progress`, and calls the command with the validated config objects:

    @app.command()
    @config_options(aliases={"out": ("--output",)})
    def train(cfg: TrainConfig, hub: HubOptions) -> None: ...

A field that two configs of a command share (tune's `out` beside train's) is one flag, declared by
the first config; a value the user gives reaches both.

Precedence: field defaults < the `--config` file < flags the user typed. A flag counts as given only
when click says its value came from the command line (or an environment variable), never by comparing
it with its default, so a flag equal to the default still wins over the file.
"""

from __future__ import annotations

import functools
import inspect
import json
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, get_args, get_origin

import typer
from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticUndefined

from emopillars.config import describe_validation_error, read_config_file
from emopillars.console import disable_progress_bars, setup_logging
from emopillars.errors import EmopillarsError

GIVEN = {"COMMANDLINE", "ENVIRONMENT"}  # click parameter sources that mean "the user typed it"
ALIAS_SUFFIX = "__alias"
COMMON = {
    "config": (Path | None, None, typer.Option("--config", help="JSON/YAML file setting any option; flags win.")),
    "verbose": (bool, False, typer.Option("--verbose", "-v", help="Debug and third-party logs, per-label tables.")),
    "quiet": (bool, False, typer.Option("--quiet", "-q", help="Warnings and errors only.")),
}
PROGRESS = (bool, True, typer.Option("--progress/--no-progress", help="Show progress bars (all of them)."))


def _is_json(annotation: Any) -> bool:
    """Mappings and nested models have no flag syntax: their option takes JSON."""
    inner = [a for a in get_args(annotation) if a is not type(None)] if type(None) in get_args(annotation) else []
    target = inner[0] if len(inner) == 1 else annotation
    return get_origin(target) is dict or target is dict or (isinstance(target, type) and issubclass(target, BaseModel))


def _cli_type(annotation: Any) -> Any:
    """The type typer parses: tuples of any length become repeatable list options; mappings take JSON text."""
    if _is_json(annotation):
        return str | None
    args = get_args(annotation)
    if get_origin(annotation) is tuple and len(args) == 2 and args[1] is Ellipsis:
        return list[args[0]]
    if type(None) in args:  # X | None: keep the optional, convert X
        inner = [a for a in args if a is not type(None)]
        if len(inner) == 1:
            return _cli_type(inner[0]) | None
    return annotation


def _show_default(default: Any) -> bool | str:
    if isinstance(default, (tuple, list)) and len(default) > 4:
        return f"{len(default)} values"
    return default is not None


def field_parameters(model: type[BaseModel], exclude: frozenset[str], aliases: dict[str, tuple[str, ...]]) -> list:
    """One keyword-only `inspect.Parameter` (with its typer.Option) per field of `model`."""
    params = []
    for name, info in model.model_fields.items():
        if name in exclude:
            continue
        required = info.default is PydanticUndefined and info.default_factory is None
        default = None if required else info.get_default(call_default_factory=True)
        annotation = _cli_type(info.annotation)
        if required:
            annotation = annotation | None
        help_text = (info.description or "") + (" Required (here or in --config)." if required else "")
        if _is_json(info.annotation):
            help_text, default = help_text + " (JSON)", None
        option = typer.Option(help=help_text.strip(), show_default=_show_default(default))
        if get_origin(annotation) is list or list in get_args(annotation):
            default = list(default) if default is not None else None
        params.append(_kw(name, Annotated[annotation, option], default))
        for alias in aliases.get(name, ()):
            hidden = typer.Option(alias, hidden=True, help=f"Old spelling of --{name.replace('_', '-')}.")
            params.append(_kw(name + ALIAS_SUFFIX, Annotated[annotation | None, hidden], None))
    return params


def _kw(name: str, annotation: Any, default: Any) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=default)


def _given(ctx: typer.Context, name: str) -> bool:
    source = ctx.get_parameter_source(name)
    return source is not None and source.name in GIVEN


def read_options_file(path: Path, fields: set[str], renamed: dict[str, str]) -> dict[str, Any]:
    """The option values a `--config` file sets (old spellings renamed); a key that is no option is a one-line error."""
    data = {renamed.get(key, key): value for key, value in read_config_file(path).items()}
    unknown = sorted(set(data) - fields, key=str)
    if unknown:
        shown = [key if len(str(key)) <= 60 else f"{str(key)[:60]}..." for key in unknown[:10]]
        raise EmopillarsError(f"config file {path}: unknown option(s) {shown}")
    return data


def build_config(
    model: type[BaseModel],
    ctx: typer.Context,
    values: dict[str, Any],
    file_data: dict[str, Any],
    source: Path | None = None,
) -> BaseModel:
    """`model` from the file's keys that are its fields, then the flags the user typed (flags win); an invalid
    value is a one-line error naming the config file `source` when the value came from it."""
    data = {k: v for k, v in file_data.items() if k in model.model_fields}
    flags = set()
    for name in model.model_fields:
        for key in (name + ALIAS_SUFFIX, name):  # the new spelling wins over the old one
            if key in values and _given(ctx, key):
                value = values[key]
                if _is_json(model.model_fields[name].annotation):
                    try:
                        value = json.loads(value)
                    except json.JSONDecodeError as exc:
                        raise EmopillarsError(f"--{name.replace('_', '-')}: not valid JSON ({exc.msg})") from None
                data[name] = tuple(value) if isinstance(value, list) else value
                flags.add(name)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        bad = {str(err["loc"][0]) for err in exc.errors() if err["loc"]}
        where = f"invalid {model.__name__}"
        if source is not None and bad and not bad & flags:
            where = f"config file {source}: {where}"
        raise EmopillarsError(describe_validation_error(exc, where)) from None


def config_options(
    exclude: tuple[str, ...] = (), aliases: dict[str, tuple[str, ...]] | None = None
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: parameters annotated with a config class become that class's options (module docstring)."""
    aliases = aliases or {}

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        hints = typing.get_type_hints(fn, include_extras=True)
        slots = {n: t for n, t in hints.items() if isinstance(t, type) and issubclass(t, BaseModel)}
        own = [p.replace(annotation=hints.get(n, p.annotation)) for n, p in inspect.signature(fn).parameters.items()]
        plain = [p for p in own if p.name not in slots]
        params = [_kw("ctx", typer.Context, inspect.Parameter.empty)]
        params += [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in plain]
        taken: set[str] = set()  # a field two configs share is one flag (the first's), and both get its value
        for model in slots.values():
            params += field_parameters(model, frozenset(exclude) | taken, aliases)
            taken |= set(model.model_fields)
        fields = {f for model in slots.values() for f in model.model_fields}
        # A config file may still use an old spelling (output: for out:).
        renamed = {alias.lstrip("-").replace("-", "_"): name for name, olds in aliases.items() for alias in olds}
        common = dict(COMMON) if "progress" in fields else {**COMMON, "progress": PROGRESS}
        params += [_kw(name, Annotated[t, opt], d) for name, (t, d, opt) in common.items()]

        @functools.wraps(fn)
        def command(ctx: typer.Context, **values: Any) -> Any:
            if _given(ctx, "verbose") or _given(ctx, "quiet"):
                setup_logging(values["verbose"], values["quiet"])
            source = values["config"]
            file_data = read_options_file(source, fields, renamed) if source else {}
            built = {name: build_config(model, ctx, values, file_data, source) for name, model in slots.items()}
            progress = next((c.progress for c in built.values() if "progress" in type(c).model_fields), None)
            if not (values.get("progress", True) if progress is None else progress):
                disable_progress_bars()
            out = next((c.out for c in built.values() if "out" in type(c).model_fields), None)
            try:
                return fn(**{p.name: values[p.name] for p in plain}, **built)
            except OSError as exc:  # a write that names no file (a library's): the CLI names the output instead
                if out is not None:
                    exc.add_note(f"under {out}")
                raise

        # typer must read the generated signature and annotations, not fn's.
        del command.__wrapped__
        command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in params}
        return command

    return wrap
