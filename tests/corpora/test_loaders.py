import json
import logging

import datasets
import huggingface_hub.constants
import pytest

from emopillars.corpora import bundled_corpus_path, load_passages, normalise_whitespace, split_passages
from emopillars.errors import EmopillarsError

STORY = """The ferry left at dawn.   Nobody   waved.

Mara counted the gulls! Was that eleven? "Twelve," said Ode.
It was a lie, and both of them knew it.

The end."""


def test_bundled_corpus_has_many_stories_with_stable_ids():
    first = load_passages(None)
    assert len(first) >= 40
    assert all(p.text.strip() and p.title and p.source == "bundled" for p in first)
    assert len({p.id for p in first}) == len(first)
    assert [p.id for p in load_passages(None)] == [p.id for p in first]


def test_bundled_stories_are_narratives_of_bounded_length():
    rows = [json.loads(line) for line in bundled_corpus_path().read_text(encoding="utf-8").splitlines()]
    assert len({r["genre"] for r in rows}) >= 15
    assert all(120 <= len(r["text"].split()) <= 250 for r in rows)


@pytest.mark.parametrize("max_chars", [1, 12, 40, 80, 1500])
def test_split_respects_bound_and_loses_no_text(max_chars):
    passages = split_passages(STORY, max_chars)
    assert all(0 < len(p) <= max_chars for p in passages)
    if max_chars >= len("knew"):  # no single word is longer than a passage: the join is exact
        assert " ".join(passages) == normalise_whitespace(STORY)


def test_split_prefers_paragraphs_then_sentences():
    assert split_passages(STORY, 1500) == [normalise_whitespace(STORY)]
    # the middle paragraph is too long for 80 characters: it breaks at sentence ends, not mid-sentence
    assert split_passages(STORY, 80) == [
        "The ferry left at dawn. Nobody waved. Mara counted the gulls! Was that eleven?",
        '"Twelve," said Ode. It was a lie, and both of them knew it. The end.',
    ]
    assert split_passages("One two three. Four five six.", 20) == ["One two three.", "Four five six."]
    assert split_passages("alpha beta gamma delta", 11) == ["alpha beta", "gamma delta"]


def test_txt_folder_recursive_sorted(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "two.txt").write_text("Second story. " * 30)
    (tmp_path / "a.txt").write_text(STORY)
    (tmp_path / "notes.md").write_text("not a story")
    passages = load_passages(str(tmp_path), max_chars=200)
    assert [p.title for p in passages][0] == "a"
    assert passages[-1].id.startswith("b/two-p")
    assert all(p.source == str(tmp_path) for p in passages)
    assert load_passages(str(tmp_path), max_chars=200, max_passages=2) == passages[:2]


def test_jsonl_uses_text_field_title_and_id(tmp_path):
    path = tmp_path / "docs.jsonl"
    rows = [{"id": "d1", "title": "Ferry", "body": STORY}, {"body": "A second, shorter tale."}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    passages = load_passages(str(path), text_field="body")
    assert passages[0].id.startswith("d1-p0-") and passages[0].title == "Ferry"
    assert passages[-1].id.startswith("docs-2-p0-") and passages[-1].title is None
    assert passages[-1].text == "A second, shorter tale."


def test_saved_hf_dataset(tmp_path):
    ds = datasets.DatasetDict(
        {
            "test": datasets.Dataset.from_dict({"story": ["Ignored split."]}),
            "train": datasets.Dataset.from_dict({"story": [STORY, "Short one."]}),
        }
    )
    ds.save_to_disk(str(tmp_path / "saved"))
    passages = load_passages(str(tmp_path / "saved"), text_field="story", max_chars=100)
    assert " ".join(p.text for p in passages) == f"{normalise_whitespace(STORY)} Short one."
    assert passages[-1].id.startswith("row1-p0-")


def test_missing_path(tmp_path):
    with pytest.raises(EmopillarsError, match="nowhere.jsonl"):
        load_passages(str(tmp_path / "nowhere.jsonl"))


def test_folder_without_txt(tmp_path):
    (tmp_path / "readme.md").write_text("hi")
    with pytest.raises(EmopillarsError, match=f"{tmp_path}.*no .txt"):
        load_passages(str(tmp_path))


def test_empty_corpus(tmp_path):
    (tmp_path / "blank.txt").write_text("  \n\n \t")
    with pytest.raises(EmopillarsError, match="empty"):
        load_passages(str(tmp_path))


def test_jsonl_bad_line_names_file_and_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "fine"}\n{not json\n')
    with pytest.raises(EmopillarsError, match="bad.jsonl:2: not valid JSON"):
        load_passages(str(path))


def test_jsonl_missing_field_names_file_and_line(tmp_path):
    path = tmp_path / "nofield.jsonl"
    path.write_text('{"text": "fine"}\n{"body": "wrong field"}\n')
    with pytest.raises(EmopillarsError, match="nofield.jsonl:2: has no string field 'text'"):
        load_passages(str(path))


def test_unknown_hf_dataset(monkeypatch):
    # Offline mode: the hub lookup fails at once instead of retrying the network for ~20 s.
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(EmopillarsError, match="no-such-owner/no-such-corpus"):
        load_passages("no-such-owner/no-such-corpus")


def test_hf_dataset_missing_column(tmp_path):
    datasets.Dataset.from_dict({"body": ["x"]}).save_to_disk(str(tmp_path / "saved"))
    with pytest.raises(EmopillarsError, match="no column 'text' \\(columns: body\\)"):
        load_passages(str(tmp_path / "saved"))


def test_undecodable_file_skipped_with_warning(tmp_path, caplog):
    (tmp_path / "good.txt").write_text(STORY)
    (tmp_path / "latin1.txt").write_bytes("caf\xe9 cr\xe8me".encode("latin-1"))
    with caplog.at_level(logging.WARNING, logger="emopillars.corpora"):
        passages = load_passages(str(tmp_path))
    assert {p.title for p in passages} == {"good"}
    assert "latin1.txt" in caplog.text


def test_only_undecodable_files_is_an_error(tmp_path):
    (tmp_path / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(EmopillarsError, match=f"{tmp_path}.*UTF-8"):
        load_passages(str(tmp_path))
