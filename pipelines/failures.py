"""How a failed step is told in one line: the root cause, for the terminal and for alerts."""

from __future__ import annotations


def root_cause(error) -> str:
    """The innermost error's message: for bad input, the one-line InputError."""
    while error.cause is not None:
        error = error.cause
    message = error.message.strip().splitlines()[-1]
    qualified, _, rest = message.partition(": ")
    if qualified.rpartition(".")[2] == error.cls_name:
        message = rest
    return f"{error.cls_name}: {message}"
