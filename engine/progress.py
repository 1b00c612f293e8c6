"""Progress of long work on a terminal (done of total, elapsed, estimate), silent otherwise.

A bar is drawn only when standard error is a terminal and `CI` is not set (and
`TRADEGAP_PROGRESS` is not `0`): piped output and CI logs stay clean.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def shown() -> bool:
    """Whether progress is drawn here."""
    if os.environ.get("CI") or os.environ.get("TRADEGAP_PROGRESS") == "0":
        return False
    return sys.stderr.isatty()


def progress(items: Iterable[T], total: int | None = None, what: str = "",
             unit: str = "it") -> Iterator[T]:
    """`items` as they are, with a progress bar on a terminal."""
    if not shown():
        yield from items
        return
    from tqdm import tqdm

    size = shutil.get_terminal_size()  # 80 × 24 where the terminal reports no size
    yield from tqdm(items, total=total, desc=what, unit=unit, leave=False,
                    ncols=size.columns, nrows=size.lines, file=sys.stderr)
