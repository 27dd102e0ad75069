"""The one exception users see: a sentence naming the file, field or value at fault."""

import importlib.util
import re

# A value quoted in a message (a line of a damaged file, a label made of 100,000 x's) is cut to its start.
_LONG_WORD = re.compile(r"\S{300,}")
MAX_MESSAGE = 2000


def _shorten(message: str) -> str:
    message = _LONG_WORD.sub(lambda m: f"{m.group()[:80]}...[{len(m.group())} characters]", message)
    return message if len(message) <= MAX_MESSAGE else f"{message[: MAX_MESSAGE - 40]}...[{len(message)} characters]"


class EmopillarsError(Exception):
    """A user error (bad input, bad option, unreachable server). The CLI prints it on one line, exits 1."""

    def __init__(self, message: str = "", *args: object):
        super().__init__(_shorten(str(message)), *args)


def require(module: str, what: str, install: str) -> None:
    """Fail with the pip command that installs `module` when it is missing; `what` names the feature needing it."""
    if importlib.util.find_spec(module) is None:
        raise EmopillarsError(
            f"{what} needs the Python package '{module}', which is not installed; run: pip install {install}"
        )
