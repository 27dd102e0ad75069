"""Parsing and validation of LLM outputs, on canned completions (the pipeline tests run the real model)."""

import json
from typing import Literal, get_args, get_origin

import pytest
from pydantic import BaseModel

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
from emopillars.taxonomy import DEFINITIONS, LABELS

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
    task = SceneTask(PASSAGE, MARA, "relief", "implicit")
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


def test_labels_become_a_full_vector_and_bad_outputs_fail():
    stage = LabelStage(CONFIG)
    task = LabelTask("He is home!", None, "Someone")
    out = {"explication": "Glad he is back.", "emotions": [{"emotion": "joy", "score": 0.9}]}
    scores = stage.parse(task, json.dumps(out))
    vector = scores.vector()
    assert list(vector) == list(LABELS) and scores.explication == "Glad he is back."
    assert vector["joy"] == 0.9 and vector["anger"] == 0.0
    for emotions in (
        [{"emotion": "happiness", "score": 0.9}],  # outside the taxonomy
        [{"emotion": "joy", "score": 1.5}],  # out of range
    ):
        with pytest.raises(ParseError) as err:
            stage.parse(task, json.dumps({**out, "emotions": emotions}))
        assert err.value.reason == "invalid"
    with pytest.raises(ParseError):
        stage.parse(task, json.dumps({"emotions": out["emotions"]}))  # no explication
    repeated = [{"emotion": "fear", "score": 0.5}, {"emotion": "joy", "score": 0.2}, {"emotion": "fear", "score": 0.9}]
    scores = stage.parse(task, json.dumps({**out, "emotions": repeated}))  # a slot filled again: counted once
    assert [(e.emotion, e.score) for e in scores.emotions] == [("fear", 0.5), ("joy", 0.2)]


def test_only_the_first_label_call_writes_an_explication_unless_all_are_asked():
    first, second = LabelTask("He is home!", None, "Someone", 0), LabelTask("He is home!", None, "Someone", 1)
    stage, scores_only = LabelStage(CONFIG), {"emotions": [{"emotion": "joy", "score": 0.9}]}
    asked = {t.sample: stage.request(t, 0) for t in (first, second)}
    assert list(asked[0].json_schema["properties"]) == ["explication", "emotions"]
    assert list(asked[1].json_schema["properties"]) == ["emotions"]
    assert "explication" in asked[0].messages[0]["content"] and "explication" not in asked[1].messages[0]["content"]
    assert asked[1].sampling.max_tokens < asked[0].sampling.max_tokens
    assert stage.parse(second, json.dumps(scores_only)).explication == ""
    every = LabelStage(CONFIG.model_copy(update={"label_explications": "all"}))
    assert "explication" in every.request(second, 0).json_schema["properties"]
    with pytest.raises(ParseError):
        every.parse(second, json.dumps(scores_only))


def test_label_schema_enum_is_the_taxonomy_and_asks_for_the_explication_first():
    schema = label_schema(LabelStage.max_emotions)
    assert list(schema["properties"]) == ["explication", "emotions"]
    assert schema["properties"]["emotions"]["items"]["properties"]["emotion"]["enum"] == list(LABELS)


TIGHTER = {"minLength": max, "maxLength": min, "minItems": max, "maxItems": min, "minimum": max, "maximum": min}


def _sent_bounds(schema: dict, path: str = "") -> dict[tuple[str, str], object]:
    """(property path, keyword) -> value for every bound and enum of a schema, nested objects and arrays too."""
    found = {(path, k): v for k, v in schema.items() if k in TIGHTER or k == "enum"}
    for name, sub in schema.get("properties", {}).items():
        found |= _sent_bounds(sub, f"{path}.{name}")
    if "items" in schema:
        found |= _sent_bounds(schema["items"], f"{path}[]")
    return found


def _record_bounds(model: type[BaseModel], path: str = "") -> dict[tuple[str, str], object]:
    """The same, read from the record's pydantic fields (not from any JSON schema)."""
    found: dict[tuple[str, str], object] = {}
    for name, field in model.model_fields.items():
        at, annotation = f"{path}.{name}", field.annotation
        is_list = get_origin(annotation) is list
        for bound in field.metadata:
            for attr, keyword in (("min_length", "minItems" if is_list else "minLength"), ("ge", "minimum")):
                if getattr(bound, attr, None) is not None:
                    found[at, keyword] = getattr(bound, attr)
            for attr, keyword in (("max_length", "maxItems" if is_list else "maxLength"), ("le", "maximum")):
                if getattr(bound, attr, None) is not None:
                    found[at, keyword] = getattr(bound, attr)
        inner = get_args(annotation)[0] if is_list else annotation
        if get_origin(inner) is Literal:
            found[at + ("[]" if is_list else ""), "enum"] = list(get_args(inner))
        elif isinstance(inner, type) and issubclass(inner, BaseModel):
            found |= _record_bounds(inner, at + ("[]" if is_list else ""))
    return found


@pytest.mark.parametrize(
    ("stage", "item"),
    [
        (CharactersStage(CONFIG), PASSAGE),
        (SceneStage(CONFIG), SceneTask(PASSAGE, MARA, "relief", "implicit")),
        (LabelStage(CONFIG), LabelTask("He is home!", None, "Someone")),
        (RewriteStage(CONFIG), RewriteTask(MARA, "He is home at last!")),
    ],
    ids=lambda v: getattr(v, "name", ""),
)
def test_schema_sent_to_the_backend_holds_every_bound_of_the_record(stage, item):
    """So constrained decoding cannot write what validation rejects: each bound is there, equal or tighter."""
    sent = _sent_bounds(stage.request(item, 0).json_schema)
    record = _record_bounds(stage.output)
    assert record, stage.output
    for (path, keyword), value in record.items():
        assert (path, keyword) in sent, (stage.name, path, keyword)
        if keyword == "enum":
            assert sent[path, keyword] == value
        else:
            assert TIGHTER[keyword](sent[path, keyword], value) == sent[path, keyword], (stage.name, path, keyword)
    if stage.name == "labels":  # narrower than the record where the prompt asks for less
        assert sent[".explication", "maxLength"] == 200 < record[".explication", "maxLength"]


def test_label_order_is_shuffled_per_call_and_repeats_with_the_seed():
    stage = LabelStage(CONFIG)
    tasks = [LabelTask("He is home!", None, "Someone", sample) for sample in range(3)]
    orders = [stage.order(t) for t in tasks]
    assert all(sorted(o) == sorted(LABELS) for o in orders)
    assert len({tuple(o) for o in orders}) == 3 and tuple(orders[0]) != LABELS
    assert [LabelStage(CONFIG).order(t) for t in tasks] == orders
    other_seed = LabelStage(CONFIG.model_copy(update={"seed": 1}))
    assert [other_seed.order(t) for t in tasks] != orders
    prompt = stage.request(tasks[0], 0).messages[0]["content"]
    defined = [line.split(":")[0][2:] for line in prompt.splitlines() if line.startswith("- ")]
    assert defined == list(LABELS)  # the definitions keep the taxonomy's order: a prefix every call shares
    shown = next(line for line in prompt.splitlines() if line.startswith("Which emotions")).split(": ", 1)[1]
    assert shown.split(".")[0].split(", ") == orders[0]
    assert "0.8" not in prompt and "fear: being afraid or worried" in prompt  # no numeric anchor; definitions
    assert stage.request(tasks[0], 0).sampling.temperature == CONFIG.label_temperature != CONFIG.temperature


def test_scene_that_names_its_target_is_dropped_as_a_leak_unless_allowed():
    task = SceneTask(PASSAGE, MARA, "relief", "explicit")
    leak = json.dumps({"context": "The boat comes round the point at dawn.", "utterance": "What a relief, he made it!"})
    stage = SceneStage(CONFIG)
    with pytest.raises(ParseError) as err:
        stage.parse(task, leak)
    assert err.value.reason == "target_word_leak"
    assert stage.tally(task, stage.read(leak)) == {"scenes": 1, "utterance": 1, "context": 0}
    allowed = SceneStage(CONFIG.model_copy(update={"allow_emotion_words": True}))
    assert allowed.parse(task, leak).utterance == "What a relief, he made it!"
    prompt = stage.request(task, 0).messages[0]["content"]
    assert "reassurance and relaxation" in prompt and "explicit" in prompt
    shown = [e for e in stage.examples(task)]
    assert len(shown) == 2 and all(e["emotion"] != "relief" and e["utterance"] in prompt for e in shown)


def test_rewrites_drop_copies_and_named_characters():
    stage = RewriteStage(CONFIG)
    task = RewriteTask(MARA, "He is home at last!")
    out = json.dumps({"rewrites": ["He is home at last!", "Mara is so glad.", "They came back to me at last!", "..."]})
    assert stage.parse(task, out).rewrites == ["They came back to me at last!"]
    with pytest.raises(ParseError):
        stage.parse(task, json.dumps({"rewrites": ["He is home at last!", "Quill smiles."]}))


def test_request_carries_schema_and_reseeds_on_retry():
    stage = LabelStage(CONFIG)
    task = LabelTask("He is home!", "Mara sees the boat.", "Mara", 0)
    first, retry = stage.request(task, 0), stage.request(task, 1)
    assert first.json_schema == label_schema(LabelStage.max_emotions)
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


def _shared_prefix(a: str, b: str) -> str:
    import os.path

    return os.path.commonprefix([a, b])


def test_long_parts_of_prompts_come_first_so_calls_share_a_prefix():
    labels = LabelStage(CONFIG)
    one, two = (
        labels.request(LabelTask(u, c, who, 1), 0).messages[0]["content"]
        for u, c, who in [("He is home!", None, "Someone"), ("Not again.", "Rain at the fair.", "Mara Quill")]
    )
    shared = _shared_prefix(one, two)
    assert all(f"- {label}: {DEFINITIONS[label]}" in shared for label in LABELS)  # every definition is shared
    assert len(shared) > 0.8 * len(one) - len("He is home!") - 28 * 16  # only the utterance and names differ
    scenes = SceneStage(CONFIG)
    first, second = (
        scenes.request(SceneTask(PASSAGE, MARA, emotion, "subtle"), 0).messages[0]["content"]
        for emotion in ("relief", "anger")
    )
    assert PASSAGE.text in _shared_prefix(first, second)  # instructions and passage before the per-call part
