"""Parsing and validation of LLM outputs, on canned completions (the pipeline tests run the real model)."""

import json

import pytest

from emopillars.prompts import label_schema
from emopillars.records import Character, Passage
from emopillars.synth.config import SynthConfig
from emopillars.synth.stages import (
    CharactersStage,
    LabelStage,
    LabelTask,
    ParseError,
    RewriteStage,
    RewriteTask,
    SceneStage,
    SceneTask,
    balance_brackets,
)
from emopillars.taxonomy import LABELS

CONFIG = SynthConfig(max_characters=2, contextless_per_example=3)
PASSAGE = Passage(id="p1", source="test", text="Mara Quill keeps the lighthouse. Her brother Tobias returns from sea.")
MARA = Character(name="Mara Quill", description="the lighthouse keeper")


def test_characters_keep_only_names_from_the_passage():
    stage = CharactersStage(CONFIG)
    out = json.dumps(
        {
            "characters": [
                {"name": "Mara Quill", "description": "keeper"},
                {"name": "Gandalf", "description": "a wizard"},
                {"name": "Tobias", "description": "her brother"},
            ]
        }
    )
    assert [c.name for c in stage.parse(PASSAGE, out).characters] == ["Mara Quill", "Tobias"]
    with pytest.raises(ParseError) as err:
        stage.parse(PASSAGE, '{"characters": [{"name": "Gandalf", "description": "a wizard"}]}')
    assert err.value.reason == "invalid"


def test_unparseable_and_invalid_outputs_are_told_apart():
    stage = SceneStage(CONFIG)
    task = SceneTask(PASSAGE, MARA, "joy")
    with pytest.raises(ParseError) as err:
        stage.parse(task, "Sure! Here is a scene")
    assert err.value.reason == "unparseable"
    for junk in (
        '{"context": "...", "utterance": "..."}',
        '{"context": "Lantern at funeral: 1987", "utterance": "1987"}',
    ):
        with pytest.raises(ParseError) as err:
            stage.parse(task, junk)
        assert err.value.reason == "invalid"
    scene = stage.parse(task, 'Here: {"context": "Mara sees the boat  return at dawn.", "utterance": "He is home!"}')
    assert scene.context == "Mara sees the boat return at dawn."


def test_labels_become_a_full_vector_and_names_outside_the_taxonomy_fail():
    stage = LabelStage(CONFIG)
    task = LabelTask("He is home!", None, "Someone")
    scores = stage.parse(task, '{"emotions": [{"emotion": "joy", "score": 0.9}, {"emotion": "relief", "score": 0.4}]}')
    vector = scores.vector()
    assert list(vector) == list(LABELS)
    assert vector["joy"] == 0.9 and vector["relief"] == 0.4 and vector["anger"] == 0.0
    with pytest.raises(ParseError):
        stage.parse(task, '{"emotions": [{"emotion": "happiness", "score": 0.9}]}')
    with pytest.raises(ParseError):
        stage.parse(task, '{"emotions": [{"emotion": "joy", "score": 1.5}]}')


def test_label_schema_enum_is_the_taxonomy():
    item = label_schema(5)["properties"]["emotions"]["items"]["properties"]["emotion"]
    assert item["enum"] == list(LABELS)


def test_rewrites_drop_copies_and_named_characters():
    stage = RewriteStage(CONFIG)
    task = RewriteTask(MARA, "He is home at last!")
    out = json.dumps({"rewrites": ["He is home at last!", "Mara is so glad.", "They came back to me at last!", "..."]})
    assert stage.parse(task, out).rewrites == ["They came back to me at last!"]
    with pytest.raises(ParseError):
        stage.parse(task, json.dumps({"rewrites": ["He is home at last!", "Quill smiles."]}))


def test_request_carries_schema_and_reseeds_on_retry():
    stage = LabelStage(CONFIG)
    task = LabelTask("He is home!", "Mara sees the boat.", "Mara")
    first, retry = stage.request(task, 0), stage.request(task, 1)
    assert first.json_schema == label_schema(5)
    assert first.messages == retry.messages and first.sampling.seed != retry.sampling.seed
    assert [m["role"] for m in first.messages] == ["user"]  # no system turn (Mistral's template)
    assert "Mara sees the boat." in first.messages[0]["content"]


def test_outputs_with_wrong_closing_brackets_are_repaired():
    stage = CharactersStage(CONFIG)
    # what SmolLM2 writes without constrained decoding (the transformers backend)
    out = '{"characters": [{"name": "Tobias", "description": "her brother"}}}'
    assert [c.name for c in stage.parse(PASSAGE, out).characters] == ["Tobias"]
    assert json.loads(balance_brackets('{"r": ["a}", "b')) == {"r": ["a}", "b"]}
    with pytest.raises(ParseError) as err:
        stage.parse(PASSAGE, '{"characters": [{"name": "Tobias" "description"}]}')
    assert err.value.reason == "unparseable"
