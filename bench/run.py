#!/usr/bin/env python3
"""Benchmark: tshark, the CLI and the page on the same large captures, in one run.

    python3 bench/run.py --size 100M --size 1G     # builds bench/out/*-100M.pcap, *-1G.pcap if missing
    python3 bench/run.py CAPTURE [CAPTURE...]      # existing captures
    options: --no-page, --no-redact, --redact-up-to 200M

For each capture it times `tshark -n -r FILE -Y "sip || dns"` (the reference),
`python3 -m sipdiag analyze FILE --json`, the page's window.sipdiag.analyze in
headless Chromium, the page just reading the file's bytes (File.slice chunks:
the floor), and redaction (`python3 -m sipdiag redact`, the page's
window.sipdiag.redact), then checks issue 3's and issue 10's (scan kernel)
speed and memory targets.
Speed targets live here, not in timed tests: figures vary with the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import make_capture
from processes import CommandRun, run_command

REPO = Path(__file__).resolve().parents[1]
OUT = Path(__file__).resolve().parent / "out"
CLI_ENV = {**os.environ, "PYTHONPATH": str(REPO / "py")}
TSHARK_FILTER = "sip || dns"
# Issue 10's targets (the scan kernel): the page's analysis against tshark, in
# packets per second and against its own plain read of the file; the CLI's against tshark.
TARGET_SPEEDUP = 10.0
TARGET_PACKETS_PER_SECOND = 2_000_000
TARGET_READ_MULTIPLE = 2.0
TARGET_CLI_SPEEDUP = 20.0
# "Flat" memory: the largest capture's page peak within this factor of the smallest's.
FLAT_MEMORY_FACTOR = 1.25


@dataclass
class Row:
    tool: str
    seconds: float | None  # None: not run (see note)
    packets: int = 0
    peak_mb: float | None = None
    note: str = ""
    cpu_seconds: float | None = None  # user + system: what the work costs on a shared machine


def cli(*arguments: str, keep_stdout: bool = False) -> CommandRun:
    return run_command([sys.executable, "-m", "sipdiag", *arguments], env=CLI_ENV, cwd=REPO,
                       keep_stdout=keep_stdout)


def tshark_row(capture: Path, packets: int) -> Row:
    run = run_command(["tshark", "-n", "-r", str(capture), "-Y", TSHARK_FILTER])
    return Row(f'tshark -Y "{TSHARK_FILTER}"', run.seconds, packets, run.peak_mb,
               "" if run.returncode == 0 else f"exit {run.returncode}", run.cpu_seconds)


def cli_analyze_row(capture: Path) -> Row:
    run = cli("analyze", str(capture), "--json", keep_stdout=True)
    if run.returncode != 0:
        return Row("CLI analyze", None, note=f"exit {run.returncode}")
    report = json.loads(run.stdout)
    return Row("CLI analyze", run.seconds, report["capture"]["packets"], run.peak_mb,
               f"{len(report['sip_messages'])} SIP messages", run.cpu_seconds)


def cli_redact_row(capture: Path) -> Row:
    output = OUT / f"redacted-{capture.name}"
    run = cli("redact", str(capture), "-o", str(output), keep_stdout=True)
    output.unlink(missing_ok=True)
    try:
        summary = json.loads(run.stdout)
    except ValueError:
        return Row("CLI redact", None, note=f"no summary (exit {run.returncode})")
    return Row("CLI redact", run.seconds, summary["packets_in"], run.peak_mb,
               f"{summary['leaks']} leaks, exit {run.returncode}", run.cpu_seconds)


def page_row(bench, job: str, capture: Path) -> Row:
    try:
        run = bench.run(job, capture)
    except Exception as error:  # a page that fails (or lacks the feature) is a figure too: say why
        return Row(f"page {job}", None, note=str(error).splitlines()[0][:120])
    ua = f", UA memory {run.ua_peak_mb:.0f} MB" if run.ua_peak_mb is not None else ", UA memory n/a"
    return Row(f"page {job}", run.seconds, run.packets, run.peak_renderer_mb,
               f"{run.detail}; boot {run.boot_seconds:.1f} s, renderer {run.booted_mb:.0f} MB after boot, "
               f"all Chromium {run.peak_chromium_mb:.0f} MB{ua}", run.cpu_seconds)


def print_table(capture: Path, rows: list[Row]) -> None:
    reference = rows[0].seconds
    print(f"\n{capture.name}: {capture.stat().st_size / 1e6:.1f} MB, {rows[1].packets or rows[0].packets} packets")
    cpu_reference = rows[0].cpu_seconds
    print(f"  {'tool':<24}{'seconds':>9}{'packets/s':>12}{'peak MB':>9}{'vs tshark':>11}{'CPU s':>8}"
          f"{'CPU vs tshark':>15}  note")
    for row in rows:
        if row.seconds is None:
            print(f"  {row.tool:<24}{'-':>9}{'-':>12}{'-':>9}{'-':>11}{'-':>8}{'-':>15}  {row.note}")
            continue
        rate = f"{row.packets / row.seconds:,.0f}" if row.packets and row.seconds else "-"  # a plain read has none
        peak = f"{row.peak_mb:.0f}" if row.peak_mb is not None else "-"
        cpu = f"{row.cpu_seconds:.2f}" if row.cpu_seconds is not None else "-"
        cpu_ratio = (f"{cpu_reference / row.cpu_seconds:.2f}x" if row.cpu_seconds and cpu_reference else "-")
        print(f"  {row.tool:<24}{row.seconds:>9.2f}{rate:>12}{peak:>9}{reference / row.seconds:>10.2f}x{cpu:>8}"
              f"{cpu_ratio:>15}  {row.note}")


def verdict(met: bool) -> str:
    return "met" if met else "NOT met"


def print_targets(results: dict[Path, dict[str, Row]]) -> None:
    print("\nissue 10 targets (page = window.sipdiag.analyze in headless Chromium):")
    for capture, rows in results.items():
        tshark, analyzed = rows["tshark"], rows["CLI analyze"]
        if analyzed.seconds is not None:
            speedup = tshark.seconds / analyzed.seconds
            print(f"  {capture.name}: CLI {speedup:.2f}x tshark (target >= {TARGET_CLI_SPEEDUP:.0f}x): "
                  f"{verdict(speedup >= TARGET_CLI_SPEEDUP)}; in CPU time {tshark.cpu_seconds / analyzed.cpu_seconds:.2f}x")
        page, read = rows.get("page analyze"), rows.get("page read")
        if page is None or page.seconds is None:
            print(f"  {capture.name}: page not measured")
            continue
        speedup = tshark.seconds / page.seconds
        rate = page.packets / page.seconds
        print(f"  {capture.name}: page {speedup:.2f}x tshark (target >= {TARGET_SPEEDUP:.0f}x): "
              f"{verdict(speedup >= TARGET_SPEEDUP)}; {rate:,.0f} packets/s (target >= "
              f"{TARGET_PACKETS_PER_SECOND:,}): {verdict(rate >= TARGET_PACKETS_PER_SECOND)}; in CPU time "
              f"{tshark.cpu_seconds / page.cpu_seconds:.2f}x tshark")
        if read is not None and read.seconds:
            multiple = page.seconds / read.seconds
            print(f"  {capture.name}: page analysis {page.seconds:.2f} s = {multiple:.2f}x its plain read of the "
                  f"file ({read.seconds:.2f} s; aim <= {TARGET_READ_MULTIPLE:.0f}x): "
                  f"{verdict(multiple <= TARGET_READ_MULTIPLE)}")
    measured = [(c, r["page analyze"]) for c, r in results.items()
                if "page analyze" in r and r["page analyze"].seconds is not None]
    if len(measured) < 2:
        print("  page memory flat with file size: needs two captures of different sizes")
        return
    (small, small_row), (large, large_row) = min(measured, key=size_of), max(measured, key=size_of)
    factor = large_row.peak_mb / small_row.peak_mb
    print(f"  page memory flat: renderer peak {small_row.peak_mb:.0f} MB ({small.stat().st_size / 1e6:.0f} MB file) "
          f"vs {large_row.peak_mb:.0f} MB ({large.stat().st_size / 1e6:.0f} MB file) = {factor:.2f}x "
          f"(target <= {FLAT_MEMORY_FACTOR}x): {verdict(factor <= FLAT_MEMORY_FACTOR)}")


def size_of(item: tuple[Path, Row]) -> int:
    return item[0].stat().st_size


def print_machine() -> None:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.machine())
    tshark = subprocess.run(["tshark", "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    print(f"machine: {os.cpu_count()} CPUs ({cpu}); Python {platform.python_version()}; {tshark}")


def captures_to_run(args) -> list[Path]:
    captures = list(args.captures)
    for size in args.size:
        path = make_capture.default_path(make_capture.DEFAULT_SOURCE, None, size)
        if not path.exists():
            make_capture.main(["--size", size, "-o", str(path)])
        captures.append(path)
    if not captures:
        raise SystemExit("run.py: give captures or --size (e.g. --size 100M)")
    return captures


def benchmark(captures: list[Path], page_bench, redact_up_to: int | None) -> dict[Path, dict[str, Row]]:
    results = {}
    for capture in captures:
        analyzed = cli_analyze_row(capture)
        rows = {"tshark": tshark_row(capture, analyzed.packets), "CLI analyze": analyzed}
        if page_bench:
            rows["page read"] = page_row(page_bench, "read", capture)
            rows["page analyze"] = page_row(page_bench, "analyze", capture)
        if redact_up_to is not None:
            if capture.stat().st_size <= redact_up_to:
                rows["CLI redact"] = cli_redact_row(capture)
                if page_bench:
                    rows["page redact"] = page_row(page_bench, "redact", capture)
            else:
                rows["redact"] = Row("redact", None, note="skipped: larger than --redact-up-to")
        print_table(capture, list(rows.values()))
        results[capture] = rows
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("captures", nargs="*", type=Path)
    parser.add_argument("--size", action="append", default=[], help="generate (if missing) and run a capture "
                        "of this size with make_capture.py, e.g. 100M; repeatable")
    parser.add_argument("--no-page", action="store_true", help="skip the browser")
    parser.add_argument("--no-redact", action="store_true", help="skip redaction")
    parser.add_argument("--redact-up-to", default="200M", help="redact only captures up to this size, to keep the "
                        "run short (default 200M)")
    args = parser.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # each table as soon as it is measured, also into a file
    captures = captures_to_run(args)
    print_machine()
    redact_up_to = None if args.no_redact else make_capture.parse_amount(args.redact_up_to)
    if args.no_page:
        results = benchmark(captures, None, redact_up_to)
    else:
        from page_bench import PageBench

        with PageBench() as page_bench:
            print(f"browser: Chromium {page_bench.browser.version} headless, site {page_bench.url}")
            results = benchmark(captures, page_bench, redact_up_to)
    print_targets(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
