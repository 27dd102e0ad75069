"""Label names as data carries them: ids or names in one cell -> names, and names -> a 0/1 matrix.

Every reader (`train` data, the GoEmotions release, `teacher-eval` gold files) parses label cells with
`parse_label_names`, and every scorer (`Split.from_labels`, `evaluate`, `teacher-eval`) builds its
(N, L) indicator matrix with `label_matrix`, so a cell means the same thing everywhere.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from emopillars.errors import EmopillarsError
from emopillars.taxonomy import LABELS


def parse_label_names(value: Any, where: str, labels: tuple[str, ...] = LABELS) -> list[str]:
    """The label names one cell holds, in its order: ids index `labels`; names pass through unchecked.

    Accepted: one id; a list of names or ids; a JSON list; `"a,b"`, `"a;b"` or one name; the
    releases' `"3,15"` and `"['3', '15']"`. An id outside `labels` is a one-line error naming `where`.
    """
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):  # one id (single-label data)
        value = [value]
    if isinstance(value, str):
        value = value.strip()
        parsed = None
        if value.startswith("["):
            try:
                parsed = json.loads(value)
            except json.JSONDecodeError:  # a Python-style list: ['3', '15']
                value = value.strip("[]")
        if parsed is not None:
            value = parsed
        else:
            value = [v.strip().strip("'\"") for v in value.replace(";", ",").split(",") if v.strip().strip("'\"")]
    if not isinstance(value, (list, tuple)):
        raise EmopillarsError(f"{where}: labels must be a list of label names or ids")
    names = []
    for item in value:
        index = int(item) if isinstance(item, str) and item.isdigit() and item not in labels else item
        if isinstance(index, (int, np.integer)) and not isinstance(index, bool):
            if not 0 <= index < len(labels):
                raise EmopillarsError(f"{where}: label {item!r} is not a label id 0-{len(labels) - 1}")
            item = labels[index]
        names.append(str(item))
    return names


def label_matrix(names: list[list[str]] | list[str], labels: tuple[str, ...] | list[str]) -> np.ndarray:
    """(N, L) int8 0/1 matrix of label names per row (a list per row, or one name per row) in `labels` order.

    A name outside `labels` is a one-line error naming the row.
    """
    index = {name: i for i, name in enumerate(labels)}
    out = np.zeros((len(names), len(labels)), dtype=np.int8)
    for row, row_names in enumerate(names):
        for name in [row_names] if isinstance(row_names, str) else row_names:
            if name not in index:
                raise EmopillarsError(f"row {row}: label {name!r} is not one of {list(labels)}")
            out[row, index[name]] = 1
    return out
