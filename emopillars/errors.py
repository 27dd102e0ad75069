"""The one exception users see: a sentence naming the file, field or value at fault."""


class EmopillarsError(Exception):
    """A user error (bad input, bad option, unreachable server). The CLI prints it on one line, exits 1."""
