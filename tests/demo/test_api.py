"""The demo through Gradio's own API (`gradio_client`), as any visitor of a page on the network could call it.

A name the owner did not offer is refused and nothing is read: the refused model and run are real, valid
folders whose files have their access time set to 0, so a read would show (the open demo reading the same
folders afterwards is the control that reads do show on this filesystem). Concurrent requests on one
model get the answers `predict` gives.
"""

from __future__ import annotations

import os
import shutil
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from emopillars.demo.app import load_classifier, predicted_names

from .conftest import Demo, write_run

pytestmark = pytest.mark.slow  # starts demo servers
TEXT = "the old man fed zorblax the ducks"


def _client(demo: Demo):
    from gradio_client import Client

    return Client(demo.url, verbose=False)


def _unread(folder: Path) -> Path:
    """Set every file's access time to 0 (the epoch): any read moves it forward (relatime updates an atime
    older than the file's mtime)."""
    for file in folder.iterdir():
        os.utime(file, (0, file.stat().st_mtime))
    return folder


def _atimes(folder: Path) -> dict[str, float]:
    return {f.name: f.stat().st_atime for f in folder.iterdir()}


def test_a_name_not_offered_is_refused_and_nothing_is_read(
    locked_demo: Demo, open_demo: Demo, planted_model: Path, tmp_path: Path
) -> None:
    from gradio_client.exceptions import AppError

    model = _unread(Path(shutil.copytree(planted_model, tmp_path / "model")))
    run = _unread(write_run(tmp_path / "run"))
    client = _client(locked_demo)
    calls = [("/classify", (str(model), TEXT, "")), ("/classify", ("org/some-hub-model", TEXT, "")),
             ("/classify", (str(tmp_path / "nowhere"), TEXT, "")), ("/context_box", (str(model),)),
             ("/browse", (str(run), "all", "all", "all", "all")), ("/filter_choices", (str(run),)),
             ("/browse", (str(tmp_path / "nowhere"), "all", "all", "all", "all"))]  # fmt: skip
    for api_name, args in calls:
        with pytest.raises(AppError, match=f"Value: {args[0]} is not in the list of choices"):
            client.predict(*args, api_name=api_name)
    for path in (model / "config.json", run / "report.json"):  # Gradio's file route serves neither
        with pytest.raises(urllib.error.HTTPError, match="403"):
            urllib.request.urlopen(f"{locked_demo.url}gradio_api/file={path}", timeout=30)
    assert set(_atimes(model).values()) == set(_atimes(run).values()) == {0}
    assert "not found" not in locked_demo.output()

    opened = _client(open_demo)  # the control: with --allow-paths the same calls read the same folders
    assert opened.predict(str(model), TEXT, "", api_name="/classify")[1] == "surprise"
    assert opened.predict(str(run), "all", "all", "all", "all", api_name="/browse")[0] == "5 of 5 examples match"
    assert _atimes(model)["config.json"] > 0 and _atimes(run)["examples.jsonl"] > 0
    assert "--allow-paths: the page loads any folder or Hub id typed into it" in open_demo.output()


def test_concurrent_requests_get_what_predict_gives(locked_demo: Demo, planted_model: Path) -> None:
    """8 requests, 4 at a time (the server's --concurrency 4): Integrated Gradients hooks the one shared model,
    so requests that overlapped on it would come back wrong."""
    texts = [TEXT, "the old man fed the ducks", "we walked zorblax to the market", "we walked to the market"] * 2
    client = _client(locked_demo)
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda t: client.predict(str(planted_model), t, "", api_name="/classify"), texts))
    expected = [predicted_names(p["labels"]) for p in load_classifier(str(planted_model)).clf.predict(texts)]
    assert [a[1] for a in answers] == expected
    assert set(expected) == {"surprise", "neutral"}
    assert all(a[0] == "" and a[3]["label"].startswith("word attributions for") for a in answers)
