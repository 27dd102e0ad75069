"""The command line as a user meets it: options from the configs, usage errors, logging, README agreement."""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Literal

import pytest
import typer
from pydantic import Field
from typer.testing import CliRunner

from emopillars.cli import app
from emopillars.config import StrictModel
from emopillars.distill.config import TrainConfig, TuneConfig
from emopillars.downstream.config import TRAIN_ONLY, EvaluateConfig, FinetuneConfig
from emopillars.hub import HubOptions
from emopillars.inference.config import PredictConfig
from emopillars.options import config_options
from emopillars.synth.config import SynthConfig

README = Path(__file__).parents[1] / "README.md"
COMMANDS = {
    "synth": ((SynthConfig, HubOptions), ()),
    "train": ((TrainConfig, HubOptions), ()),
    "tune": ((TuneConfig, TrainConfig), ()),
    "finetune": ((FinetuneConfig, HubOptions), ("problem_type", "labels", *TRAIN_ONLY)),
    "evaluate": ((EvaluateConfig,), ()),
    "predict": ((PredictConfig,), ()),
}
runner = CliRunner()


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "emopillars.cli", *args], capture_output=True, text=True, timeout=120)


def _help(command: str) -> str:
    result = runner.invoke(app, [command, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    return result.output


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


# --- options generated from the configs ---------------------------------------------------------------


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_config_field_has_a_flag(command: str) -> None:
    models, excluded = COMMANDS[command]
    flags = set(re.findall(r"--[a-z][a-z0-9-]*", _help(command)))
    for model in models:
        for name in set(model.model_fields) - set(excluded):
            assert _flag(name) in flags, f"{command}: {name} has no flag"
    assert {"--config", "--verbose", "--quiet", "--progress", "--no-progress"} <= flags
    for name in excluded:
        assert _flag(name) not in flags


def test_help_shows_real_defaults_choices_and_descriptions() -> None:
    text = re.sub(r"\s+", " ", _help("train"))
    assert "--lr <float> Peak learning rate (AdamW). [default: 5e-05]" in text
    assert "--mode <contextless|contextual>" in text and "[default: contextless]" in text
    assert "--report-to <none|tensorboard|wandb>" in text
    assert "--group-by-length / --no-group-by-length" in text
    assert "--split-fractions <float,float,float>..." in text and "[default: 0.8, 0.1, 0.1]" in text
    assert "--output" not in text  # the old spelling works but is hidden
    synth = re.sub(r"\s+", " ", _help("synth"))
    assert "--backend <vllm|openai|transformers|ray>" in synth and "--push-to-hub" in synth


class Toy(StrictModel):
    size: int = Field(3, description="A size.")
    kind: Literal["a", "b"] = "a"
    flag: bool = True
    fractions: tuple[float, float] = (0.5, 0.5)
    out: Path = Path("o")
    weights: dict[str, float] = Field(default_factory=dict, description="Per-label weights.")


toy_app = typer.Typer()
seen: list[Toy] = []


@toy_app.command()
@config_options(aliases={"out": ("--output",)})
def toy(cfg: Toy) -> None:
    seen.append(cfg)


@pytest.mark.parametrize(
    ("file", "args", "expected"),
    [
        ({}, [], {"size": 3, "kind": "a", "flag": True}),
        ({"size": 5, "kind": "b", "flag": False}, [], {"size": 5, "kind": "b", "flag": False}),
        # a typed flag wins over the file even when it equals the default
        ({"size": 5, "kind": "b", "flag": False}, ["--size", "3", "--kind", "a", "--flag"], {"size": 3, "kind": "a"}),
        ({}, ["--fractions", "0.2", "0.8", "--output", "x"], {"fractions": (0.2, 0.8), "out": Path("x")}),
        ({}, ["--output", "x", "--out", "y"], {"out": Path("y")}),  # the new spelling wins
        ({"output": "z"}, [], {"out": Path("z")}),  # also in a config file
        ({"weights": {"a": 1}}, ["--weights", '{"b": 2}'], {"weights": {"b": 2.0}}),  # mappings as JSON
    ],
)
def test_defaults_then_config_file_then_typed_flags(tmp_path: Path, file: dict, args: list, expected: dict) -> None:
    config = tmp_path / "c.json"
    config.write_text(json.dumps(file))
    seen.clear()
    result = runner.invoke(toy_app, ["--config", str(config), *args])
    assert result.exit_code == 0, result.output
    assert seen[0].model_dump(include=set(expected)) == expected


class Study(StrictModel):
    out: Path = Path("study")
    trials: int = 2


pair_app = typer.Typer()
pairs: list[tuple[Study, Toy]] = []


@pair_app.command()
@config_options()
def pair(study: Study, cfg: Toy) -> None:
    pairs.append((study, cfg))


def test_a_field_two_configs_share_is_one_flag_reaching_both() -> None:
    """tune's --out beside train's: one flag (the first config's default in --help); a typed value sets both."""
    result = runner.invoke(pair_app, ["--help"], terminal_width=200)
    assert result.output.count("--out ") == 1 and "[default: study]" in result.output
    for args, outs in (([], (Path("study"), Path("o"))), (["--out", "x"], (Path("x"), Path("x")))):
        pairs.clear()
        assert runner.invoke(pair_app, args).exit_code == 0
        assert (pairs[0][0].out, pairs[0][1].out) == outs


def test_config_file_with_an_unknown_option_is_one_error(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("size: 4\nsizes: 5\n")
    result = runner.invoke(toy_app, ["--config", str(config)])
    assert "unknown option(s) ['sizes']" in str(result.exception)


# --- usage errors and domain errors ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["train", "--bogus"], "--bogus"),
        (["train", "--epochs", "x"], "--epochs"),
        (["train", "--mode", "sideways"], "--mode"),
        (["synth", "--backend", "nope"], "--backend"),
        (["trian"], "trian"),
    ],
)
def test_usage_errors_are_one_line_exit_2(args: list[str], named: str) -> None:
    done = _cli(*args)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and named in lines[0], done.stderr


def test_domain_errors_are_one_line_exit_1(tmp_path: Path) -> None:
    done = _cli("train", "--data", str(tmp_path / "none.jsonl"))
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [f"error: data file not found: {tmp_path}/none.jsonl"]


def test_version_and_help() -> None:
    from emopillars import __version__

    done = _cli("--version")
    assert done.returncode == 0 and done.stdout.strip() == f"emopillars {__version__}"
    assert _cli("train", "--help").returncode == 0


# --- logging ------------------------------------------------------------------------------------------------


def test_quiet_by_default_and_verbosity_after_the_subcommand(tmp_path: Path) -> None:
    missing = str(tmp_path / "none.jsonl")
    runner.invoke(app, ["train", "--data", missing])
    assert logging.getLogger("emopillars").getEffectiveLevel() == logging.INFO
    assert logging.getLogger("httpx").getEffectiveLevel() == logging.WARNING
    runner.invoke(app, ["train", "--data", missing, "-v"])
    assert logging.getLogger("emopillars").getEffectiveLevel() == logging.DEBUG
    assert logging.getLogger("httpx").getEffectiveLevel() == logging.INFO
    runner.invoke(app, ["train", "--data", missing, "-q"])
    assert logging.getLogger("emopillars").getEffectiveLevel() == logging.WARNING


# --- README and --help agree ------------------------------------------------------------------------------


def test_every_flag_the_readme_names_exists() -> None:
    """Each `## emopillars X` section's flags exist in X's --help (or one of the commands it names)."""
    sections = re.split(r"^## ", README.read_text(encoding="utf-8"), flags=re.M)
    helps: dict[str, set[str]] = {}
    checked = 0
    for section in sections:
        title = section.splitlines()[0] if section else ""
        commands = re.findall(r"emopillars (\w[\w-]*)", title)
        if not commands:
            continue
        for command in commands:
            helps.setdefault(command, set(re.findall(r"--[a-z][a-z0-9-]*", _help(command))))
        for flag in set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", section)) - {"--help"}:
            assert any(flag in helps[c] for c in commands), f"README names {flag} under {title!r}; not a flag"
            checked += 1
    assert checked > 30


def test_the_usual_path_in_the_root_help_uses_real_flags() -> None:
    """`emopillars --help` shows the usual path as command lines: each names a command, and each flag it uses exists."""
    shown = runner.invoke(app, ["--help"], terminal_width=200).output
    lines = re.findall(r"^\s+emopillars (\w[\w-]*)(.*)$", shown, flags=re.M)
    assert [command for command, _ in lines] == ["synth", "train", "predict"]
    for command, rest in lines:
        flags = set(re.findall(r"--[a-z][a-z0-9-]*", rest.split("#")[0]))
        assert flags and flags <= set(re.findall(r"--[a-z][a-z0-9-]*", _help(command))), (command, flags)


def test_no_progress_silences_every_library(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets
    import huggingface_hub
    from transformers.utils import logging as hf_logging

    for name in ("TQDM_DISABLE", "HF_HUB_DISABLE_PROGRESS_BARS", "HF_DATASETS_DISABLE_PROGRESS_BARS"):
        monkeypatch.setenv(name, "0")  # restored after the test
    runner.invoke(app, ["evaluate", "--model", str(tmp_path), "--data", str(tmp_path), "--no-progress"])
    assert not hf_logging.is_progress_bar_enabled()
    assert not datasets.is_progress_bar_enabled()
    assert huggingface_hub.utils.are_progress_bars_disabled()
    assert os.environ["TQDM_DISABLE"] == "1"
    hf_logging.enable_progress_bar()
    datasets.enable_progress_bars()
    huggingface_hub.utils.enable_progress_bars()


def test_a_missing_package_names_the_feature_and_the_pip_command():
    from emopillars.errors import EmopillarsError, require

    require("json", "anything", '"emopillars[x]"')  # installed: nothing happens
    with pytest.raises(EmopillarsError) as caught:
        require("emopillars_no_such_module", "backend 'vllm'", '"emopillars[gpu]" (CUDA) or "emopillars[cpu]" (CPU)')
    assert str(caught.value) == (
        "backend 'vllm' needs the Python package 'emopillars_no_such_module', which is not installed; "
        'run: pip install "emopillars[gpu]" (CUDA) or "emopillars[cpu]" (CPU)'
    )


full_disk_app = typer.Typer()


@full_disk_app.command()
@config_options()
def fill(cfg: Toy) -> None:
    raise OSError(errno.ENOSPC, "No space left on device")  # as a library's write raises it: no file named


def test_a_disk_error_naming_no_file_is_noted_with_the_output_folder_from_a_config_file(tmp_path: Path) -> None:
    """`out` set only in --config still names where the command was writing (not only a --out on the line)."""
    from emopillars.cli import _where

    config = tmp_path / "run.yaml"
    config.write_text(f"out: {tmp_path / 'run'}\n")
    result = runner.invoke(full_disk_app, ["--config", str(config)])
    assert isinstance(result.exception, OSError)
    assert _where(result.exception) == f"under {tmp_path / 'run'}"
    assert _where(OSError(errno.ENOSPC, "full", "/x/file.json")) == "/x/file.json"
