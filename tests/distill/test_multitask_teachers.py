"""Teachers and rounds per task in multi-task training: KD and teacher annealing from each task's own teacher
(BAM!'s single-task teachers), a multi-task teacher by head name, born-again generations and pseudo-labels."""

from __future__ import annotations

from pathlib import Path

import pytest

from emopillars.distill.config import TrainConfig
from emopillars.distill.data import read_texts
from emopillars.distill.multitask import train_multitask
from emopillars.errors import EmopillarsError

from .test_multitask import SENTIMENT, write_sentiment


@pytest.fixture(scope="module")
def sentiment(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_sentiment(tmp_path_factory.mktemp("senti") / "sentiment.jsonl")


def two_tasks(synth_dir: Path, sentiment: Path, out: Path, fast: dict, **options: object) -> TrainConfig:
    return TrainConfig(task=(f"emo={synth_dir}", f"senti={sentiment}:labels"), out=out, **fast, **options)  # type: ignore[arg-type]


def test_single_task_teacher_anneals_its_own_task_over_born_again_generations(
    trained: tuple[Path, dict], synth_dir: Path, sentiment: Path, tmp_path: Path, fast: dict
) -> None:
    """BAM!: a single-task teacher for `emo` only, annealed; generation 2 learns both heads from generation 1."""
    cfg = two_tasks(synth_dir, sentiment, tmp_path, fast, max_steps=4, born_again=2, teacher_annealing=True,
                    task_teacher=(f"emo={trained[0]}",))  # fmt: skip
    report = train_multitask(cfg).report
    assert report["tasks"]["emo"]["teacher"] == str(trained[0]) and report["tasks"]["senti"]["teacher"] is None
    first, second = report["generations"]
    assert first["tasks"] == {"emo": {"pseudo_labelled_added": 0, "teacher": True},
                              "senti": {"pseudo_labelled_added": 0, "teacher": False}}  # fmt: skip
    assert all(t["teacher"] for t in second["tasks"].values()) and second["teacher_annealing"]
    best = report["best_generation"]
    assert report["generations"][best - 1]["validation"]["macro_f1"] == max(
        g["validation"]["macro_f1"] for g in report["generations"]
    )
    # the logged lambda is the step's place in the run, on the steps of a task with a teacher only
    lambdas = {h["step"]: h.get("teacher_lambda") for h in report["history"]}
    for h in report["history"]:
        assert (lambdas[h["step"]] is None) == (h["task"] == "senti" and best == 1)
        if lambdas[h["step"]] is not None:
            assert lambdas[h["step"]] == pytest.approx((h["step"] - 1) / 3)
    card = (tmp_path / "README.md").read_text()
    assert "| 1 | --task-teacher |" in card and f"| `{trained[0]}` |" in card  # generations, then the tasks table


def test_pseudo_labels_join_each_task_by_its_own_head(
    synth_dir: Path, sentiment: Path, tmp_path: Path, fast: dict
) -> None:
    pool = tmp_path / "pool.txt"
    pool.write_text("\n".join(p + " again" for phrases in SENTIMENT.values() for p in phrases) + "\n")
    cfg = two_tasks(synth_dir, sentiment, tmp_path / "model", fast, max_steps=3, rounds=2, unlabeled=str(pool),
                    pseudo_threshold=0.3)  # fmt: skip
    report = train_multitask(cfg).report
    first, second = report["rounds"]
    added = {name: t["pseudo_labelled_added"] for name, t in second["tasks"].items()}
    assert first["pseudo_labelled_added"] == 0 and not first["teacher"] and second["teacher"]
    # a 3-way softmax always has a label at >= 1/3 > 0.3: every pool row joins the sentiment task
    assert added["senti"] == len(read_texts(pool)[0]) and 0 <= added["emo"] <= added["senti"]
    assert second["train_rows"] == first["train_rows"] + sum(added.values())


def test_a_multi_task_teacher_teaches_each_head_by_name(
    synth_dir: Path, sentiment: Path, tmp_path: Path, fast: dict
) -> None:
    teacher = train_multitask(two_tasks(synth_dir, sentiment, tmp_path / "teacher", fast, max_steps=2)).out
    student = two_tasks(synth_dir, sentiment, tmp_path / "student", fast, max_steps=2, teacher=str(teacher))
    report = train_multitask(student).report
    assert {n: t["teacher"] for n, t in report["tasks"].items()} == {"emo": str(teacher), "senti": str(teacher)}
    assert all(h["kd"] >= 0 for h in report["history"])  # both tasks' steps carry a KD term


def test_teachers_that_fit_no_task_are_refused(
    trained: tuple[Path, dict], synth_dir: Path, sentiment: Path, tmp_path: Path, fast: dict
) -> None:
    with pytest.raises(EmopillarsError, match="predicts other labels than task senti"):
        train_multitask(two_tasks(synth_dir, sentiment, tmp_path, fast, task_teacher=(f"senti={trained[0]}",)))
    with pytest.raises(EmopillarsError, match=r"expected NAME=MODEL with NAME one of \['emo', 'senti'\]"):
        train_multitask(two_tasks(synth_dir, sentiment, tmp_path, fast, task_teacher=(f"topic={trained[0]}",)))
    with pytest.raises(ValueError, match="for multi-task training"):
        TrainConfig(task_teacher=(f"emo={trained[0]}",))
    with pytest.raises(ValueError, match="no checkpoints to resume"):
        TrainConfig(task=("a=x", "b=y"), resume=True)
