"""The work per SIP message does not grow with the number of dialogs in the capture.

Counted, not timed: every Python function call the analysis makes is
counted (`sys.setprofile`), on SIP-only captures built by
bench/make_signalling.py from the lab's real signalling, with 4x more copies
of the same scenarios in the second. A pass over every message or every
registration made per registration or per call (what issue 14 found) makes
the count per message grow with the copies; look-ups by key keep it flat.
"""

from __future__ import annotations

import sys

import pytest
from locations import REPO

sys.path.insert(0, str(REPO / "bench"))
import make_signalling  # noqa: E402  (bench/: the benchmark's own capture generator)

from sipdiag.engine import analyze_path  # noqa: E402


def calls_per_message(path) -> tuple[float, int]:
    counted = 0

    def count(frame, event, arg):
        nonlocal counted
        if event == "call":
            counted += 1

    sys.setprofile(count)
    try:
        report = analyze_path(str(path))
    finally:
        sys.setprofile(None)
    messages = len(report["sip_messages"])
    return counted / messages, messages


@pytest.fixture(scope="module")
def scenarios() -> int:
    return len(make_signalling.read_scenarios(make_signalling.SOURCES))


def test_function_calls_per_message_do_not_grow_from_one_to_four_times_the_dialogs(tmp_path, scenarios):
    measured = {}
    for rounds in (3, 12):  # every scenario `rounds` times, so both captures have the same mix
        capture = tmp_path / f"signalling-{rounds}.pcap"
        make_signalling.make_signalling(capture, None, rounds * scenarios, 0.01, False, 1448)
        measured[rounds] = calls_per_message(capture)
    (small, small_messages), (large, large_messages) = measured[3], measured[12]
    assert large_messages == 4 * small_messages
    # Linear work plus a fixed part can only fall per message as the capture grows: any rise is work
    # per message that depends on how many dialogs there are (before issue 14's fixes: 334 -> 356).
    assert large <= small, f"{small:.0f} calls per message with {small_messages}, {large:.0f} with {large_messages}"
