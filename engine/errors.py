"""Bad input is an exception with a one-line message naming the file, column and rows."""

from __future__ import annotations

from collections.abc import Sequence


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
