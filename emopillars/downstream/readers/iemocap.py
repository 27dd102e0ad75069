"""IEMOCAP (text): utterance tables with a dialogue id; earlier turns of the dialogue form each example's context."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

from emopillars.downstream.readers import shared
from emopillars.downstream.readers.shared import RawRow, ReadOptions, Row
from emopillars.errors import EmopillarsError

_DIALOGUE = ("dialogue_id", "dialog_id", "dialogue", "conversation_id", "session_id")
_ORDER = ("utterance_order", "order", "turn", "turn_id", "utterance_idx", "utt_index")
_TEXT = ("text", "utterance", "transcript", "transcription")
_LABEL = ("label", "emotion")
_SESSION = re.compile(r"^ses0*(\d+)", re.IGNORECASE)
# Labels of the release outside the standard 6-class text setting: those utterances stay in the
# dialogue (as context for their neighbours) but are not examples.
OTHER = frozenset({"xxx", "oth", "other", "sur", "fea", "dis"})


def _split(dialogue: str, options: ReadOptions) -> str:
    """The standard text setting: sessions 1-4 train (10% of their dialogues validation), session 5 test."""
    match = _SESSION.match(dialogue)
    if not match:
        return shared.hash_split(dialogue, options.split_seed)
    if int(match.group(1)) == 5:
        return "test"
    return shared.hash_split(dialogue, options.split_seed, validation=0.1, test=0.0)


def _order(raw: RawRow, index: int) -> float:
    """The turn's position in its dialogue: its order column, else its place in the file."""
    order_col = shared.column(raw, None, _ORDER, "utterance order")
    if order_col is None:
        return float(index)
    try:
        return float(raw.values[order_col])
    except (TypeError, ValueError):
        raise EmopillarsError(f"{raw.where}: utterance order {raw.values[order_col]!r} is not a number") from None


def read(source: str | Path, options: ReadOptions, labels: tuple[str, ...]) -> list[Row]:
    dialogues: dict[str, list[tuple[float, int, RawRow, str, str]]] = defaultdict(list)
    for index, raw in enumerate(shared.rows(source, options.hub_config)):
        dialogue_col = shared.find_column(raw, None, _DIALOGUE, "dialogue id", "a dialogue_id column")
        text_col = shared.find_column(raw, options.text_column, _TEXT, "text", "--text-column")
        label_col = shared.find_column(raw, options.label_column, _LABEL, "label", "--label-column")
        dialogue = shared.text(raw.values[dialogue_col], raw.where, "dialogue id")
        label = str(raw.values[label_col]).strip().lower()
        if label not in labels and label not in OTHER:
            raise EmopillarsError(
                f"{raw.where}: IEMOCAP label {raw.values[label_col]!r} is not one of "
                f"{', '.join(labels)} (or {', '.join(sorted(OTHER))}, kept as context)"
            )
        dialogues[dialogue].append(
            (_order(raw, index), index, raw, shared.text(raw.values[text_col], raw.where), label)
        )
    out = []
    for dialogue, turns in dialogues.items():
        turns.sort(key=lambda t: (t[0], t[1]))
        shown: list[str] = []  # the dialogue so far, as the context side sees it
        for order, _, raw, body, label in turns:
            speaker_col = shared.column(raw, None, ("speaker", "spk"), "speaker")
            speaker = str(raw.values[speaker_col]).strip() if speaker_col else ""
            if label not in OTHER:
                context = shared.join_turns(shown[-options.context_turns :] if options.context_turns else [])
                id_ = shared.row_id(raw, ("utterance_id", "id"))
                id_ = f"{dialogue}_{order:g}" if id_ == raw.where else id_
                example = shared.row(id_, body, context, [label], shared.row_split(raw, _split(dialogue, options)))
                out.append({**example, "dialogue_id": dialogue})
            shown.append(f"{speaker}: {body}" if speaker else body)
    return out
