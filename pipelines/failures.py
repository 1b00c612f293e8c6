"""How a failed step is told in one line: the root cause, for the terminal and for alerts."""

from __future__ import annotations

BAD_INPUT = "InputError"  # what the loaders raise for bad input (engine.errors)


def innermost(error):
    """The innermost cause of a step's error (Dagster wraps the asset's own exception)."""
    while error.cause is not None:
        error = error.cause
    return error


def _message(error) -> str:
    """An error's last line, less its qualified class name."""
    message = error.message.strip().splitlines()[-1]
    qualified, _, rest = message.partition(": ")
    return rest if qualified.rpartition(".")[2] == error.cls_name else message


def root_cause(error) -> str:
    """The innermost error's message: for bad input, the one-line InputError."""
    cause = innermost(error)
    return f"{cause.cls_name}: {_message(cause)}"


def bad_input(error) -> str | None:
    """The one-line message of a step that failed on bad input, else None."""
    cause = innermost(error)
    return _message(cause) if cause.cls_name == BAD_INPUT else None
