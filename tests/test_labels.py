"""One label-cell parser and one label matrix for every reader and scorer."""

from __future__ import annotations

import numpy as np
import pytest

from emopillars.errors import EmopillarsError
from emopillars.labels import label_matrix, parse_label_names
from emopillars.taxonomy import LABELS


@pytest.mark.parametrize(
    "cell",
    [[17, 0], ["joy", "admiration"], "17,0", "[17, 0]", "['17', '0']", '["joy", "admiration"]', "joy;admiration"],
)
def test_every_way_a_release_writes_labels_parses_alike(cell: object) -> None:
    assert sorted(parse_label_names(cell, "f:1")) == ["admiration", "joy"]


def test_ids_index_the_given_label_set_and_a_bad_id_names_the_cell() -> None:
    assert parse_label_names(1, "f:1", ("a", "b")) == ["b"]
    with pytest.raises(EmopillarsError, match="f:2: label '28' is not a label id 0-27"):
        parse_label_names("3,28", "f:2")


def test_label_matrix_rows_in_label_order_and_unknown_names_fail() -> None:
    m = label_matrix([["fear", "joy"], "joy", []], ("joy", "fear"))
    assert m.dtype == np.int8 and m.tolist() == [[1, 1], [1, 0], [0, 0]]
    assert label_matrix([list(LABELS)], LABELS).sum() == len(LABELS)
    with pytest.raises(EmopillarsError, match="row 0: label 'happiness'"):
        label_matrix([["happiness"]], LABELS)
