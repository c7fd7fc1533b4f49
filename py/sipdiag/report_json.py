"""The report as JSON text, written as it goes: never the whole document as one string.

The bytes are exactly `json.dump(document, stream, indent=1)`'s (the form the
CLI has always printed, and the tests compare): the same separators, key
order, `ensure_ascii` escapes, float spelling (`repr`, NaN/Infinity) and
empty containers. What differs is the cost. The standard library's encoder
with an indent runs in pure Python and yields one token at a time; on a
report of hundreds of thousands of rows that was a third of the CLI's time.
Here each value is encoded by a recursive function appending to a list (the
strings through the C escaper), and a top-level list is written row by row,
so the text held at once is one row's.
"""

from __future__ import annotations

from json.encoder import encode_basestring_ascii as _string
from collections.abc import Iterator
from typing import TextIO

INDENT = " "
_INFINITY = float("inf")


def _float(value: float) -> str:
    if value != value:
        return "NaN"
    if value == _INFINITY:
        return "Infinity"
    if value == -_INFINITY:
        return "-Infinity"
    return float.__repr__(value)


def _key(key) -> str:
    """A dict key as json.dumps spells it (non-string keys become strings)."""
    if type(key) is str or isinstance(key, str):
        return _string(key)
    if key is True:
        return '"true"'
    if key is False:
        return '"false"'
    if key is None:
        return '"null"'
    if isinstance(key, int):
        return '"' + int.__repr__(key) + '"'
    if isinstance(key, float):
        return '"' + _float(key) + '"'
    raise TypeError(f"keys must be str, int, float, bool or None, not {type(key).__name__}")


_CONSTANTS = {None: "null", True: "true", False: "false"}


def _scalar(value) -> str | None:
    """The text of a string, number, bool or None; None for a container (or anything else)."""
    kind = type(value)
    if kind is str:
        return _string(value)
    if kind is int:
        return int.__repr__(value)
    if kind is float:
        return _float(value)
    if value is None or kind is bool:
        return _CONSTANTS[value]
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        return _float(value)
    return None


def _encode(value, level: int, out: list[str]) -> None:
    """Append the indent=1 text of `value`, nested `level` deep, to `out`.

    Scalars are spelled in the loops (`_scalar`) rather than by a call to
    this function each: most values of a report are scalars in flat rows."""
    text = _scalar(value)
    if text is not None:
        out.append(text)
    elif isinstance(value, dict):
        if not value:
            out.append("{}")
            return
        inner = "\n" + INDENT * (level + 1)
        separator = "{" + inner
        for key, item in value.items():
            text = _scalar(item)
            if text is not None:
                out.append(f"{separator}{_key(key)}: {text}")
            else:
                out.append(f"{separator}{_key(key)}: ")
                _encode(item, level + 1, out)
            separator = "," + inner
        out.append("\n" + INDENT * level + "}")
    elif isinstance(value, (list, tuple)):
        if not value:
            out.append("[]")
            return
        inner = "\n" + INDENT * (level + 1)
        separator = "[" + inner
        for item in value:
            text = _scalar(item)
            if text is not None:
                out.append(separator + text)
            else:
                out.append(separator)
                _encode(item, level + 1, out)
            separator = "," + inner
        out.append("\n" + INDENT * level + "]")
    else:
        raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def encode(value, level: int = 0) -> str:
    """One value's text, as json.dumps(value, indent=1) gives it at that depth."""
    out: list[str] = []
    _encode(value, level, out)
    return "".join(out)


def write_json(document: dict, stream: TextIO) -> None:
    """json.dump(document, stream, indent=1), a top-level entry at a time and a list row by row.

    A top-level value may also be an iterator (report.build_report's
    streamed_messages): it is written as the list it yields, each row made
    just before it is written."""
    if not document:
        stream.write("{}")
        return
    separator = "{\n" + INDENT
    for key, value in document.items():
        stream.write(separator + _key(key) + ": ")
        if isinstance(value, Iterator) or (isinstance(value, (list, tuple)) and value):
            row_separator = "[\n" + INDENT * 2
            for row in value:
                stream.write(row_separator + encode(row, 2))
                row_separator = ",\n" + INDENT * 2
            # An iterator that yielded nothing is an empty list.
            stream.write("[]" if row_separator.startswith("[") else "\n" + INDENT + "]")
        else:
            stream.write(encode(value, 1))
        separator = ",\n" + INDENT
    stream.write("\n}")
