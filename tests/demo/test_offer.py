"""What the demo page may open, checked in the handlers themselves (no server): a name the owner did not
offer is refused by its string alone, before any read; `--allow-paths` lets it through."""

from __future__ import annotations

from pathlib import Path

import pytest

from emopillars.demo import app, corpus
from emopillars.demo.offer import Offer, free_paths_notice, is_loopback
from emopillars.errors import EmopillarsError

from .conftest import write_run


def test_offer_passes_only_what_the_owner_named() -> None:
    offer = Offer(models=("runs/student",), runs=("runs/demo",))
    assert offer.model("runs/student") == "runs/student"
    assert offer.run(" runs/demo ") == "runs/demo"
    with pytest.raises(EmopillarsError, match=r"model '/etc' is not offered by this page \(offered: runs/student\)"):
        offer.model("/etc")
    with pytest.raises(EmopillarsError, match="run 'runs/student' is not offered"):
        offer.run("runs/student")  # a model's name is no run
    with pytest.raises(EmopillarsError, match="choose a model"):
        offer.model(None)
    with pytest.raises(EmopillarsError, match=r"no run on this page: its owner can add one \(emopillars demo --data"):
        Offer().run("")
    assert Offer(allow_paths=True).model("org/any-hub-model") == "org/any-hub-model"


def test_handlers_refuse_before_reading(tmp_path: Path) -> None:
    """A real run folder and a missing one, neither offered: the same refusal, and neither cache saw a load."""
    offer = Offer(models=("runs/student",), runs=("runs/demo",))
    real_run = str(write_run(tmp_path / "run"))
    models_before, runs_before = app._load.cache_info(), corpus._read.cache_info()
    for name in (str(tmp_path / "nowhere"), "org/hub-model", real_run):
        message = app.classify(offer, name, "hello there", "")[0]
        assert f"model {name!r} is not offered by this page" in message
        assert app.is_contextual(offer, name) is False
    for name in (real_run, str(tmp_path / "nowhere")):
        message = app.browse(offer, name, "all", "all", "all", "all")[0]
        assert f"run {name!r} is not offered by this page" in message
        assert [box.choices for box in app.filter_choices(offer, name)] == [[("all", "all")]] * 4
    assert (app._load.cache_info(), corpus._read.cache_info()) == (models_before, runs_before)


def test_allow_paths_reads_what_it_is_given(tmp_path: Path) -> None:
    offer = Offer(allow_paths=True)
    assert "model folder not found" in app.classify(offer, str(tmp_path / "nowhere"), "hello there", "")[0]
    run = str(write_run(tmp_path / "run"))
    assert app.browse(offer, run, "all", "contextual", "all", "all")[0] == "3 of 5 examples match"


def test_the_start_line_for_free_paths() -> None:
    assert [is_loopback(h) for h in ("127.0.0.1", "127.1.2.3", "::1", "localhost")] == [True] * 4
    assert [is_loopback(h) for h in ("0.0.0.0", "::", "192.168.1.5", "myhost")] == [False] * 4
    assert free_paths_notice(Offer(models=("m",)), "0.0.0.0") is None
    assert "bound to 127.0.0.1 only" in free_paths_notice(Offer(allow_paths=True), "127.0.0.1")
    line = free_paths_notice(Offer(allow_paths=True), "0.0.0.0")
    assert line.startswith("--allow-paths with --host 0.0.0.0: anyone who can reach this page")
    assert "\n" not in line


def test_config_names_one_or_several() -> None:
    from emopillars.inference.config import DemoConfig

    assert DemoConfig.model_validate({"model": "runs/student", "data": ["a", "b"]}).model == ("runs/student",)
    assert DemoConfig.model_validate({"data": ["a", "b"]}).data == ("a", "b")
    with pytest.raises(ValueError, match="concurrency"):
        DemoConfig(concurrency=0)
