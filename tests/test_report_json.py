"""The streaming report writer gives json.dump(indent=1)'s exact text, row by row.

The CLI's bytes are what the page is compared with and what users diff, so
the writer is held to the standard library's output on every report the
corpus gives and on the values a report can carry at the edges.
"""

from __future__ import annotations

import io
import json
import math
import os
import subprocess
import sys

import pytest
from locations import FIXTURES, REPO, SHARED_CAPTURES

from sipdiag.engine import analyze_path
from sipdiag.report_json import encode, write_json

CAPTURES = sorted(p for folder in (SHARED_CAPTURES, FIXTURES) for p in folder.rglob("*")
                  if p.suffix in (".pcap", ".pcapng"))


class CountingStream(io.StringIO):
    """Remembers the longest single write: the writer must not hand over the document at once."""

    def __init__(self) -> None:
        super().__init__()
        self.longest = 0

    def write(self, text: str) -> int:
        self.longest = max(self.longest, len(text))
        return super().write(text)


@pytest.mark.parametrize("capture", CAPTURES, ids=lambda p: p.name)
def test_every_corpus_report_is_written_as_json_dump_writes_it(capture):
    report = analyze_path(str(capture))
    stream = CountingStream()
    write_json(report, stream)
    expected = json.dumps(report, indent=1)
    assert stream.getvalue() == expected
    if len(report["sip_messages"]) > 1:
        # One row at a time: the longest write is a top-level value or a row (as nested in the document,
        # where each line is indented by its depth), with its key or separator, never the document.
        pieces = [json.dumps(value, indent=1).replace("\n", "\n ") for value in report.values()
                  if not isinstance(value, list)]
        pieces += [json.dumps(row, indent=1).replace("\n", "\n  ") for value in report.values()
                   if isinstance(value, list) for row in value]
        bound = max(map(len, pieces)) + len(",\n  ") + max(map(len, report)) + len('"": ')
        assert stream.longest <= bound < len(expected)


EDGE_VALUES = [
    {},
    [],
    {"a": {}, "b": [], "c": [{}], "d": [[]]},
    {"nan": math.nan, "inf": math.inf, "-inf": -math.inf, "tiny": 5e-324, "big": 1e300, "third": 1 / 3,
     "negative zero": -0.0, "int": -(2**70)},
    {"text": 'quote " backslash \\ newline \n tab \t nul \0 del \x7f é 中 \U0001F600 \ud800'},
    {7: "int key", 2.5: "float key", True: "bool key", None: "null key", "s": "str key"},
    {"tuple": (1, (2, 3), ()), "bools": [True, False, None]},
    {"rows": [{"frame": 1, "errors": ["x", "y"], "nested": {"deep": [{"z": [1, {"w": None}]}]}}]},
]


@pytest.mark.parametrize("value", EDGE_VALUES, ids=range(len(EDGE_VALUES)))
def test_edge_values_are_spelled_as_json_dumps_spells_them(value):
    assert encode(value) == json.dumps(value, indent=1)
    if isinstance(value, dict):
        stream = io.StringIO()
        write_json(value, stream)
        assert stream.getvalue() == json.dumps(value, indent=1)


def test_nested_encoding_matches_the_text_inside_the_document():
    row = {"frame": 3, "errors": ["bad Via"], "media": [{"src": "a", "lost": 0}]}
    document = json.dumps({"rows": [row]}, indent=1)
    assert "\n  " + encode(row, 2) in document


def test_what_json_cannot_carry_is_refused_like_json_dumps_refuses_it():
    for value in ({"a": object()}, {(1, 2): "tuple key"}):
        with pytest.raises(TypeError):
            json.dumps(value, indent=1)
        with pytest.raises(TypeError):
            encode(value)


@pytest.mark.parametrize("with_text", [False, True], ids=["default", "with-text"])
def test_the_cli_prints_the_report_json_dumps_would_print(with_text):
    capture = FIXTURES / "calls" / "call_408_proxy.pcap"
    completed = subprocess.run([sys.executable, "-m", "sipdiag", "analyze", str(capture), "--json"]
                               + (["--with-text"] if with_text else []),
                               capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO / "py")})
    assert completed.returncode == 0
    assert completed.stdout == json.dumps(analyze_path(str(capture), with_text=with_text), indent=1) + "\n"


@pytest.mark.parametrize("rows", [[], [{"frame": 1, "text": "INVITE"}, {"frame": 2, "errors": []}]],
                         ids=["empty", "two rows"])
def test_an_iterator_of_rows_is_written_as_the_list_it_yields(rows):
    stream = io.StringIO()
    write_json({"schema": "s", "sip_messages": iter(rows), "calls": []}, stream)
    assert stream.getvalue() == json.dumps({"schema": "s", "sip_messages": rows, "calls": []}, indent=1)


def test_streamed_message_rows_give_the_report_bytes_and_are_made_one_at_a_time():
    capture = FIXTURES / "calls" / "call_cancel_487.pcap"
    streamed = analyze_path(str(capture), streamed_messages=True)
    assert not isinstance(streamed["sip_messages"], list)
    stream = io.StringIO()
    write_json(streamed, stream)
    assert stream.getvalue() == json.dumps(analyze_path(str(capture)), indent=1)
