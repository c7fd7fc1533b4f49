#!/usr/bin/env python3
"""CPU time per SIP message in each phase of the CLI's analysis, and where the memory goes.

    python3 bench/phases.py CAPTURE             # decode + parse, analyses + report rows, JSON
    python3 bench/phases.py CAPTURE --memory    # and tracemalloc's top allocation sites after decoding

CPU time (time.process_time), not wall time: on a machine shared with other
work the wall time says more about the neighbours than about the engine.
The JSON phase uses the CLI's own writer (report_json.write_json) into memory.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "py"))
from sipdiag.capture.scan import READ_CHUNK  # noqa: E402
from sipdiag.engine import CaptureAnalysis, collector_paused  # noqa: E402
from sipdiag.report import build_report  # noqa: E402
from sipdiag.report_json import write_json  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("capture", type=Path)
    parser.add_argument("--memory", action="store_true", help="trace allocations (slows every phase)")
    parser.add_argument("--top", type=int, default=12)
    args = parser.parse_args(argv)
    if args.memory:
        tracemalloc.start()
    started = time.process_time()
    analysis = CaptureAnalysis(args.capture.name, keep_text=False)  # as `analyze --json`
    with open(args.capture, "rb") as capture:
        while chunk := capture.read(READ_CHUNK):
            analysis.feed(chunk)
    result = analysis.finish_result()
    decoded = time.process_time()
    if args.memory:
        current, _ = tracemalloc.get_traced_memory()
        print(f"after decoding: {current / 1e6:.1f} MB traced; largest allocation sites:")
        for stat in tracemalloc.take_snapshot().statistics("lineno")[:args.top]:
            print(f"  {stat}")
    with collector_paused():  # as CaptureAnalysis.finish runs the analyses
        report = build_report(result, with_text=False)
    reported = time.process_time()
    text = io.StringIO()
    write_json(report, text)
    written = time.process_time()
    messages = len(result.sip_messages) or 1
    phases = {"decode + parse": decoded - started, "analyses + report rows": reported - decoded,
              "JSON": written - reported}
    print(f"{args.capture.name}: {len(result.sip_messages)} SIP messages, {len(text.getvalue()) / 1e6:.1f} MB of JSON")
    for name, seconds in phases.items():
        print(f"  {name:<24}{seconds:8.2f} s CPU {seconds / messages * 1e6:8.0f} µs per message")
    total = written - started
    print(f"  {'total':<24}{total:8.2f} s CPU {total / messages * 1e6:8.0f} µs per message = "
          f"{messages / total:,.0f} messages/s")
    if args.memory:
        current, peak = tracemalloc.get_traced_memory()
        print(f"  traced at the end {current / 1e6:.1f} MB, peak {peak / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
