#!/usr/bin/env python3
"""How long until the engine is ready: page load to `window.sipdiag.ready` resolved, and where it goes.

    python3 bench/boot.py [--runs 5]

The ways a user opens sipdiag, each timed --runs times in headless Chromium
(median printed): the folder site over HTTP in a fresh browser context (cold:
nothing cached, no engine snapshot), the same page loaded again in that
context (warm: the HTTP cache holds Pyodide, IndexedDB the engine snapshot the
cold start made), and dist/sipdiag.html opened from file:// in a fresh context
(cold) and again in it (warm). Then, per way, the worker's steps
(`sipdiag.boot.phases`): how long each took, median over the runs, from the
page's start to the worker's first line, and on to ready; the steps after
ready (importing the rest, making and storing the snapshot) delay only the
first job. Also prints the size of the built site and of the single file.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from page_bench import SITE, WAIT_FOR_API, PageBench

# Resolves with the snapshot's fate once the worker has prepared (the warm start needs the cold one's snapshot).
WAIT_FOR_PREPARED = """() => new Promise((resolve) => {
  const check = () => (window.sipdiag.boot.snapshot !== null ? resolve(window.sipdiag.boot.snapshot) : setTimeout(check, 20));
  check();
})"""


def start(page, url: str) -> tuple[float, list, str]:
    """Seconds to ready, the worker's steps (name, ms since the page began) and the snapshot's fate."""
    started = time.perf_counter()
    page.goto(url)
    page.evaluate(WAIT_FOR_API)
    page.evaluate("() => window.sipdiag.ready")
    seconds = time.perf_counter() - started
    snapshot = page.evaluate(WAIT_FOR_PREPARED)
    return seconds, page.evaluate("() => window.sipdiag.boot.phases"), snapshot


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    ways = ("HTTP cold", "HTTP warm", "file:// cold", "file:// warm")
    runs: dict[str, list[tuple[float, list, str]]] = {way: [] for way in ways}
    with PageBench() as bench:
        for _ in range(args.runs):
            for cold, warm, url in (("HTTP cold", "HTTP warm", bench.url),
                                    ("file:// cold", "file:// warm", (SITE / "sipdiag.html").as_uri())):
                context = bench.browser.new_context()
                page = context.new_page()
                runs[cold].append(start(page, url))
                runs[warm].append(start(page, url))
                context.close()
    site_bytes = sum(path.stat().st_size for path in SITE.rglob("*") if path.is_file())
    print(f"engine ready, median of {args.runs} (min-max):")
    for way in ways:
        values = [seconds for seconds, _, _ in runs[way]]
        fates = sorted({snapshot for _, _, snapshot in runs[way]})
        print(f"  {way:14} {statistics.median(values):5.2f} s ({min(values):.2f}-{max(values):.2f})"
              f"  snapshot: {', '.join(fates)}")
    print("steps, median ms (the step ends at the mark named; the first from the page's start):")
    for way in ways:
        steps: dict[str, list[float]] = {}
        for _, phases, _ in runs[way]:
            before = 0.0
            for name, at in phases:
                steps.setdefault(name, []).append(at - before)
                before = at
        print(f"  {way}: " + ", ".join(f"{name} {statistics.median(values):.0f}" for name, values in steps.items()))
    print(f"site: {site_bytes:,} bytes; single file: {(SITE / 'sipdiag.html').stat().st_size:,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
