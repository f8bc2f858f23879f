"""Errors that mean "the user asked for something that does not exist" (as opposed to a bug).

The CLI prints these as one-line messages; any other exception keeps its traceback, so a
programming error is never disguised as bad input.
"""

from __future__ import annotations


class UnknownNameError(KeyError):
    """A model, family, level or threshold name that is not defined; the message lists valid ones."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class BadInputError(ValueError):
    """A command-line value that cannot be used (a name that is a path, a time that is not a
    number...); the message says what is allowed."""
