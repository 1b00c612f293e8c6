"""Untrusted text (asset, file and backtest names, messages) made inert in Markdown.

Every string that comes from the user goes through `escape` before it is put in a report or
in Markdown metadata: it then renders as exactly its characters, in running text and in a
table cell alike. HTML's `& < >` become entities, Markdown's markup characters are escaped
with a backslash (CommonMark escapes any ASCII punctuation this way), and control characters
(a newline would end a table row) become their visible Unicode pictures (U+2400 block).
"""

from __future__ import annotations

MARKUP = frozenset("\\`*_~[]|#!")
ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}
DELETE = "\x7f"


def escape(value: object) -> str:
    """`value` as text that renders literally in Markdown and cannot add HTML or break a row."""
    return "".join(_escape_char(char) for char in str(value))


def _escape_char(char: str) -> str:
    if char in ENTITIES:
        return ENTITIES[char]
    if char in MARKUP:
        return "\\" + char
    if char < " ":
        return chr(0x2400 + ord(char))
    if char == DELETE:
        return "\u2421"
    return char
