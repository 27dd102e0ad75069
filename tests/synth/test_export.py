from datasets import load_from_disk

from emopillars.records import Example
from emopillars.synth.export import assign_splits, example_id, write_outputs
from emopillars.taxonomy import LABELS


def test_splits_are_by_passage_seeded_and_cover_all_three():
    passages = [f"p{i}" for i in range(10)]
    splits = assign_splits(passages + passages[:3], (0.8, 0.1, 0.1), seed=0)
    assert set(splits) == set(passages)
    assert sorted(splits.values()).count("train") == 8
    assert set(splits.values()) == {"train", "validation", "test"}
    assert splits == assign_splits(list(reversed(passages)), (0.8, 0.1, 0.1), seed=0)
    assert set(assign_splits(["a", "b", "c"], (0.8, 0.1, 0.1), seed=0).values()) == {"train", "validation", "test"}


def test_ids_are_content_derived():
    assert example_id("a", "b") == example_id("a", "b") != example_id("a", "c")
    assert example_id("ab", "c") != example_id("a", "bc")


def test_outputs_round_trip_through_jsonl_and_datasets(tmp_path, capfd):
    soft = dict.fromkeys(LABELS, 0.0) | {"joy": 0.9}
    examples = [
        Example(
            id=example_id(str(i)), mode=mode, split=split, passage_id=f"p{i}", character="Mara",
            character_description="keeper", context="At dawn." if mode == "contextual" else None,
            utterance=f"He is home {i}!", target_emotion="joy", expressiveness="subtle", soft_labels=soft,
            labels=["joy"], primary_emotion="joy", label_agreement=None if i else 0.5, explication="glad",
        )
        for i, (mode, split) in enumerate([("contextual", "train"), ("contextless", "train"), ("contextual", "test")])
    ]  # fmt: skip
    write_outputs(examples, tmp_path)
    assert capfd.readouterr().err == ""  # no "Saving the dataset" bars: three of them said nothing about the run
    lines = (tmp_path / "examples.jsonl").read_text().splitlines()
    assert [Example.model_validate_json(line) for line in lines] == examples
    dataset = load_from_disk(str(tmp_path / "dataset"))
    assert {s: len(d) for s, d in dataset.items()} == {"train": 2, "validation": 0, "test": 1}
    assert dataset["test"][0]["soft_labels"]["joy"] > 0.89 and dataset["train"][1]["context"] is None
    # Label columns are typed as in the datasets GoEmotions release: ClassLabel ids over the 28 names.
    features = dataset["train"].features
    assert features["target_emotion"].names == list(LABELS) and features["labels"].feature.names == list(LABELS)
    row = dataset["train"][0]
    assert features["target_emotion"].int2str(row["target_emotion"]) == "joy" == LABELS[row["labels"][0]]
    assert features["mode"].int2str(row["mode"]) == "contextual" and row["label_agreement"] == 0.5
