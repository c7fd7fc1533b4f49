#!/usr/bin/env python3
"""How long until the engine is ready: page load to `window.sipdiag.ready` resolved.

    python3 bench/boot.py [--runs 5]

Three ways a user opens sipdiag, each timed --runs times in headless Chromium
(median printed): the folder site over HTTP in a fresh browser context (cold:
nothing cached), the same page loaded again in that context (warm: the HTTP
cache holds Pyodide), and dist/sipdiag.html opened from file:// (the single
file, nothing to cache). Also prints the size of the built site and of the
single file.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from page_bench import SITE, WAIT_FOR_API, PageBench


def seconds_to_ready(page, url: str) -> float:
    started = time.perf_counter()
    page.goto(url)
    page.evaluate(WAIT_FOR_API)
    page.evaluate("() => window.sipdiag.ready")
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    times: dict[str, list[float]] = {"HTTP cold": [], "HTTP warm": [], "file:// single file": []}
    with PageBench() as bench:
        for _ in range(args.runs):
            context = bench.browser.new_context()
            page = context.new_page()
            times["HTTP cold"].append(seconds_to_ready(page, bench.url))
            times["HTTP warm"].append(seconds_to_ready(page, bench.url))
            context.close()
            context = bench.browser.new_context()
            times["file:// single file"].append(seconds_to_ready(context.new_page(), (SITE / "sipdiag.html").as_uri()))
            context.close()
    site_bytes = sum(path.stat().st_size for path in SITE.rglob("*") if path.is_file())
    print(f"engine ready, median of {args.runs} (min-max):")
    for name, values in times.items():
        print(f"  {name:20} {statistics.median(values):5.2f} s ({min(values):.2f}-{max(values):.2f})")
    print(f"site: {site_bytes:,} bytes; single file: {(SITE / 'sipdiag.html').stat().st_size:,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
