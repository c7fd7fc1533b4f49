#!/usr/bin/env python3
"""Benchmark: SIP-only captures at scale (issue 14), tshark and the CLI on the same files, in one run.

    python3 bench/signalling.py                                  # 100M and 1G over UDP, 16M over TCP
    python3 bench/signalling.py --size 100M --tcp-size 16M       # only those
    python3 bench/signalling.py --size 100M --keep-report        # keep bench/out/*.report.json

Captures come from make_signalling.py (built if missing, under bench/out/,
git-ignored). For each it runs `tshark -n -r FILE -Y "sip || dns"` and
`python3 -m sipdiag analyze FILE --json` (the report written to a file in
bench/out, deleted afterwards unless --keep-report), with wall time and peak
RSS of each (GNU time), and prints:
- the CLI's SIP messages per second (the capture's messages, known by
  construction, / wall time) against the target of 50,000, and the same by
  CPU time (user + system), the figure a busy shared machine does not skew;
- its peak RSS against the target of the capture's size + 300 MB;
- report bytes per message, and memory per message and per copy (dialog or
  registration): the peak minus the CLI's peak on a capture of a handful of
  messages, divided by their count; memory should follow the copies, not text;
- where the CPU time goes (bench/phases.py on the same file: decoding, the
  analyses, the JSON), unless --no-phases.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import make_signalling
from processes import run_command
from run import CLI_ENV, REPO, TSHARK_FILTER, print_machine

TARGET_MESSAGES_PER_SECOND = 50_000
TARGET_HEADROOM_MB = 300  # peak RSS <= capture size + this
BASELINE_COPIES = "20"


@dataclass
class Measured:
    capture: Path
    messages: int
    copies: int
    tshark_seconds: float
    tshark_cpu: float
    tshark_mb: float
    cli_seconds: float | None
    cli_cpu: float
    cli_mb: float
    report_bytes: int
    note: str = ""


def capture_for(size: str, tcp: bool) -> Path:
    path = make_signalling.default_path(size, None, tcp)
    if not path.exists() or not make_signalling.counts_path(path).exists():
        make_signalling.main(["--size", size, "-o", str(path)] + (["--tcp"] if tcp else []))
    return path


def analyze(capture: Path, keep_report: bool) -> tuple[float | None, float, float, int, str]:
    """(seconds or None on failure, CPU seconds, peak MB, report bytes, note) of the CLI's JSON report."""
    report = capture.with_name(capture.name + ".report.json")
    run = run_command([sys.executable, "-m", "sipdiag", "analyze", str(capture), "--json"], env=CLI_ENV, cwd=REPO,
                      stdout_path=report)
    size = report.stat().st_size
    if not keep_report:
        report.unlink()
    if run.returncode != 0:
        return None, run.cpu_seconds, run.peak_mb, size, f"exit {run.returncode}"
    return run.seconds, run.cpu_seconds, run.peak_mb, size, ""


def measure(capture: Path, keep_report: bool) -> Measured:
    counts = make_signalling.read_counts(capture)
    tshark = run_command(["tshark", "-n", "-r", str(capture), "-Y", TSHARK_FILTER])
    seconds, cpu, peak_mb, report_bytes, note = analyze(capture, keep_report)
    return Measured(capture, counts["sip_messages"], counts["copies"], tshark.seconds, tshark.cpu_seconds,
                    tshark.peak_mb, seconds, cpu, peak_mb, report_bytes, note)


def verdict(met: bool) -> str:
    return "met" if met else "NOT met"


def print_row(row: Measured, baseline_mb: float) -> None:
    size_mb = row.capture.stat().st_size / 1e6
    print(f"\n{row.capture.name}: {size_mb:.1f} MB, {row.messages:,} SIP messages, {row.copies:,} copies "
          f"(dialogs and registrations)")
    print(f"  tshark -Y \"{TSHARK_FILTER}\": {row.tshark_seconds:.1f} s ({row.tshark_cpu:.1f} s CPU), "
          f"{row.tshark_mb:.0f} MB peak")
    if row.cli_seconds is None:
        print(f"  CLI analyze --json: failed ({row.note}), {row.cli_mb:.0f} MB peak")
        return
    rate = row.messages / row.cli_seconds
    cpu_rate = row.messages / row.cli_cpu if row.cli_cpu else 0.0
    limit = size_mb + TARGET_HEADROOM_MB
    grown = max(row.cli_mb - baseline_mb, 0.0) * 1e6
    print(f"  CLI analyze --json: {row.cli_seconds:.1f} s, {row.cli_cpu:.1f} s CPU "
          f"({row.tshark_cpu / row.cli_cpu if row.cli_cpu else 0:.2f}x tshark's CPU), "
          f"{row.cli_mb:.0f} MB peak, report {row.report_bytes / 1e6:.1f} MB "
          f"({row.report_bytes / row.messages:.0f} bytes per message)")
    print(f"  memory above a {baseline_mb:.0f} MB tiny-capture run: {grown / row.messages:.0f} bytes per message, "
          f"{grown / row.copies:.0f} bytes per copy")
    print(f"  target CLI >= {TARGET_MESSAGES_PER_SECOND:,} SIP messages/s: {rate:,.0f} by wall time, "
          f"{cpu_rate:,.0f} by CPU time: {verdict(rate >= TARGET_MESSAGES_PER_SECOND)}")
    print(f"  target CLI peak <= capture + {TARGET_HEADROOM_MB} MB ({limit:.0f} MB): {row.cli_mb:.0f} MB: "
          f"{verdict(row.cli_mb <= limit)}")


def print_phases(capture: Path) -> None:
    """bench/phases.py's figures for the capture, under its row."""
    lines = subprocess.run([sys.executable, str(Path(__file__).with_name("phases.py")), str(capture)],
                           env=CLI_ENV, cwd=REPO, capture_output=True, text=True, check=True).stdout.splitlines()
    print("  where the CPU time goes (bench/phases.py, in one process):")
    for line in lines[1:]:
        print(f"  {line}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", action="append", help="a UDP capture of this size (default 100M and 1G); "
                        "repeatable")
    parser.add_argument("--tcp-size", action="append", help="a back-to-back TCP capture of this size (default "
                        "16M); repeatable")
    parser.add_argument("--keep-report", action="store_true", help="keep each report beside its capture")
    parser.add_argument("--no-phases", action="store_true", help="skip bench/phases.py's run on each capture")
    args = parser.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)
    if args.size is None and args.tcp_size is None:
        args.size, args.tcp_size = ["100M", "1G"], ["16M"]
    captures = [capture_for(size, False) for size in args.size or []]
    captures += [capture_for(size, True) for size in args.tcp_size or []]
    print_machine()
    baseline = make_signalling.default_path(None, BASELINE_COPIES, False)
    make_signalling.main(["--calls", BASELINE_COPIES, "-o", str(baseline)])
    _, _, baseline_mb, _, _ = analyze(baseline, False)
    for capture in captures:
        print_row(measure(capture, args.keep_report), baseline_mb)
        if not args.no_phases:
            print_phases(capture)
    return 0


if __name__ == "__main__":
    sys.exit(main())
