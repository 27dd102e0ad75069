"""How synth writes into its output folder: one run at a time, and every file whole or not at all."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from emopillars.errors import EmopillarsError


@contextmanager
def exclusive(out: Path) -> Iterator[None]:
    """One run per output folder: two writers would interleave the cache."""
    out.mkdir(parents=True, exist_ok=True)
    with (out / ".lock").open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise EmopillarsError(
                f"another emopillars run is writing to {out}; wait for it or use another --out"
            ) from None
        yield


def write_atomic(path: Path, text: str | Iterable[str]) -> None:
    """`path` holds `text` (a string or its parts), or after a kill mid-write what it held before: the text is
    written beside it, then renamed over it."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        f.writelines([text] if isinstance(text, str) else text)
    os.replace(tmp, path)
