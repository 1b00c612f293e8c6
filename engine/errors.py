"""Bad input is an exception with a one-line message naming the file, column and rows; an
output replaced by another's written at the same time is one too."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


class InputError(ValueError):
    """User input that cannot be backtested; `str(error)` is the one-line message."""

    def __init__(
        self,
        source: str,
        problem: str,
        column: str | None = None,
        rows: Sequence[int] = (),
        total: int | None = None,
    ) -> None:
        self.source = source
        self.problem = problem
        self.column = column
        self.rows = list(rows)[:5]
        self.total = len(rows) if total is None else total
        super().__init__(self._message())

    def _message(self) -> str:
        where = f"{self.source}"
        if self.column is not None:
            where += f": column '{self.column}'"
        text = f"{where}: {self.problem}"
        if self.rows:
            shown = ", ".join(str(r) for r in self.rows)
            more = f" ({self.total} rows in all)" if self.total > len(self.rows) else ""
            text += f" at rows {shown}{more}"
        return text


class OutputReplaced(RuntimeError):
    """An output was written, then replaced (or removed) by another writing the same folder
    that finished after it: the folder does not hold this command's output."""

    def __init__(self, out: Path, kind: str, other: str | None) -> None:
        self.out = out
        if other is not None:
            what = (f"another tradegap {other} output, written to this folder at the same "
                    f"time, finished after this {kind} output and replaced it; the folder "
                    "holds that one")
        else:
            what = (f"this {kind} output was removed or replaced while it was written; the "
                    "folder holds nothing of it")
        super().__init__(f"{out}: {what}")
