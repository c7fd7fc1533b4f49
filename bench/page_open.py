#!/usr/bin/env python3
"""Benchmark: a capture opened in the page as a user opens it (the file input), in headless Chromium.

    python3 bench/page_open.py bench/out/signalling-udp-100M.pcap

Prints the time until the page says "analyzed" (or its memory guard stops the
reading: then that, and nothing more), the renderer's peak RSS over
that (the page and its worker: Pyodide's heap is a thread of that process),
then, in the SIP messages tab, the time to show the first message's text
(read from the file by the worker) and to search every message for "m=audio"
(the worker reads every message again). The site is page_bench's build.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from page_bench import PageBench
from processes import BrowserMemorySampler

STATUS = "#engine-status"
TIMEOUT_MS = 60 * 60 * 1000
# Until every table of the panel has its rows (a polling promise: the CSP forbids evaluated strings).
ROWS_SHOWN = """() => new Promise((resolve) => {
  const check = () => {
    const tables = [...document.querySelectorAll("#tab-panel table")];
    const busy = tables.some((table) => table.getAttribute("aria-busy") === "true");
    return busy ? setTimeout(check, 20) : resolve();
  };
  check();
})"""


def print_refusal(capture: Path, sentence: str, seconds: float, booted: int, peak: int) -> None:
    """The memory guard stopped the reading: what the page said, when, and the memory it took."""
    print(f"{capture.name}: {capture.stat().st_size / 1e6:.1f} MB")
    print(f"  not opened: the memory guard stopped reading after {seconds:.1f} s, renderer {booted / 1e6:.0f} MB "
          f"after boot, peak {peak / 1e6:.0f} MB: \"{sentence}\"")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("capture", type=Path)
    args = parser.parse_args()
    with PageBench() as bench:
        context = bench.browser.new_context()
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(bench.url)
        page.locator(STATUS, has_text="engine ready").wait_for()
        with BrowserMemorySampler() as memory:
            booted, _ = memory.sample()
            started = time.perf_counter()
            page.set_input_files("#file-input", str(args.capture))
            analyzed = page.locator(STATUS, has_text=f"analyzed {args.capture.name}")
            refused = page.locator("#memory-choice:not([hidden])")
            analyzed.or_(refused).wait_for()
            opened = time.perf_counter() - started
            peak_open = memory.peak_renderer
            if refused.is_visible():
                print_refusal(args.capture, page.locator("#error").text_content(), opened, booted, peak_open)
                context.close()
                return
            started = time.perf_counter()
            page.locator('#tabs [data-tab="messages"]').click()
            page.locator("#tab-panel tr.message-row").first.click()
            page.locator("#tab-panel pre.message-text:not(.loading)").wait_for()
            first_text = time.perf_counter() - started
            started = time.perf_counter()
            page.locator("#tab-panel input.filter").fill("m=audio")
            page.wait_for_timeout(50)
            page.evaluate(ROWS_SHOWN)
            searched = time.perf_counter() - started
            shown = page.locator("#tab-panel .pager, #tab-panel .table-count").first.text_content()
        context.close()
    size = args.capture.stat().st_size / 1e6
    print(f"{args.capture.name}: {size:.1f} MB")
    print(f"  opened (analyzed, Findings drawn): {opened:.1f} s, renderer {booted / 1e6:.0f} MB after boot, "
          f"peak {peak_open / 1e6:.0f} MB while opening")
    print(f"  first message's text in the SIP messages tab: {first_text:.2f} s")
    print(f"  search \"m=audio\" over every message: {searched:.2f} s ({(shown or '').strip()})")
    print(f"  renderer peak over all of it: {memory.peak_renderer / 1e6:.0f} MB")


if __name__ == "__main__":
    main()
