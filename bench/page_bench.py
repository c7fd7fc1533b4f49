"""The page in headless Chromium: time window.sipdiag.analyze/redact on a capture file.

The site is built from the current tree into bench/out/site (never dist/,
which other work rebuilds) with build.py's own build and HTTP handler. It is
served cross-origin isolated (COOP/COEP headers, everything is same-origin
anyway) so that performance.measureUserAgentSpecificMemory, which counts the
page and its worker's heaps, is available next to the RSS of the processes.

Each job gets a fresh browser context: wasm memory never shrinks, so a page
that analyzed a 1 GB file would make the next file's memory look larger.
The file reaches the page through a file input (Playwright hands Chromium the
path), so the page reads it from disk with File.slice() like a user's file.
"""

from __future__ import annotations

import functools
import http.server
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from processes import BrowserMemorySampler

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
import build  # noqa: E402  (build.py at the repository root: the site engineer's build)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run",
                 # measureUserAgentSpecificMemory otherwise waits for the next natural GC (up to 20 s)
                 "--enable-blink-features=ForceEagerMeasureMemory"]
SITE = Path(__file__).resolve().parent / "out" / "site"
INPUT_ID = "bench-file"
JOB_TIMEOUT_MS = 60 * 60 * 1000
UA_MEMORY_INTERVAL_MS = 500

# A polling promise, not page.wait_for_function: that evaluates a string, which the page's CSP forbids.
WAIT_FOR_API = """() => new Promise((resolve) => {
  const check = () => (window.sipdiag ? resolve() : setTimeout(check, 20));
  check();
})"""
ADD_INPUT = """(id) => {
  const input = Object.assign(document.createElement("input"), { type: "file", id, hidden: true });
  document.body.append(input);  // not the page's own input: that would start the UI's analysis too
}"""

# Runs in the page: the timed call, with the UA memory sampled alongside while the worker works.
RUN_JOB = """async ({ id, job, intervalMs }) => {
  const file = document.getElementById(id).files[0];
  const measurable = self.crossOriginIsolated && typeof performance.measureUserAgentSpecificMemory === "function";
  let running = true;
  let uaPeak = null;
  const sampler = (async () => {
    while (measurable && running) {
      const { bytes } = await performance.measureUserAgentSpecificMemory();
      uaPeak = Math.max(uaPeak ?? 0, bytes);
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
  })();
  const started = performance.now();
  let packets;
  let detail;
  if (job === "read") {
    // The floor: the file's bytes read the way the worker reads them (File.slice chunks), nothing else.
    const chunk = 4 * 1024 * 1024;
    let bytes = 0;
    for (let done = 0; done < file.size; done += chunk) {
      bytes += (await file.slice(done, done + chunk).arrayBuffer()).byteLength;
    }
    packets = 0;
    detail = `${(bytes / 1e6).toFixed(1)} MB read in ${Math.ceil(file.size / chunk)} slices`;
  } else if (job === "analyze") {
    const report = await window.sipdiag.analyze(file);
    packets = report.capture.packets;
    detail = `${report.sip_messages.length} SIP messages`;
  } else {
    const { blob, summary } = await window.sipdiag.redact(file);
    packets = summary.packets_in;
    detail = `${summary.leaks} leaks, ${(blob.size / 1e6).toFixed(1)} MB out`;
  }
  const seconds = (performance.now() - started) / 1000;
  running = false;
  await sampler;
  return { seconds, packets, detail, uaPeak };
}"""


@dataclass
class PageRun:
    seconds: float
    packets: int
    detail: str
    boot_seconds: float
    booted_mb: float  # renderer RSS once the engine is ready, before the file
    peak_renderer_mb: float  # the page's renderer process (with its worker) during the job
    peak_chromium_mb: float  # all Chromium processes during the job
    ua_peak_mb: float | None  # performance.measureUserAgentSpecificMemory, when available
    cpu_seconds: float  # all Chromium processes during the job


class IsolatedHandler(build.SiteHandler):
    quiet = True

    def end_headers(self):
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        super().end_headers()


class PageBench:
    """A built site, its server and a headless Chromium; `run` is one timed job on one file."""

    def __enter__(self) -> PageBench:
        from playwright.sync_api import sync_playwright

        build.build(SITE)
        handler = functools.partial(IsolatedHandler, directory=str(SITE))
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/"
        self.playwright = sync_playwright().start()
        self.browser = self.playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        return self

    def __exit__(self, *exc) -> None:
        self.browser.close()
        self.playwright.stop()
        self.server.shutdown()
        self.server.server_close()

    def run(self, job: str, capture: Path) -> PageRun:
        """job is "analyze", "redact" or "read" (File.slice the file, nothing else)."""
        context = self.browser.new_context()
        try:
            page = context.new_page()
            page.set_default_timeout(JOB_TIMEOUT_MS)
            started = time.perf_counter()
            page.goto(self.url)
            page.evaluate(WAIT_FOR_API)
            page.evaluate("() => window.sipdiag.ready")
            boot_seconds = time.perf_counter() - started
            page.evaluate(ADD_INPUT, INPUT_ID)
            page.set_input_files(f"#{INPUT_ID}", capture)
            with BrowserMemorySampler() as memory:
                booted_renderer, _ = memory.sample()
                cpu_before = memory.cpu_seconds()
                result = page.evaluate(RUN_JOB, {"id": INPUT_ID, "job": job, "intervalMs": UA_MEMORY_INTERVAL_MS})
                cpu = memory.cpu_seconds() - cpu_before
        finally:
            context.close()
        ua_peak = result["uaPeak"]
        return PageRun(result["seconds"], result["packets"], result["detail"], boot_seconds,
                       booted_renderer / 1e6, memory.peak_renderer / 1e6, memory.peak_all / 1e6,
                       ua_peak / 1e6 if ua_peak is not None else None, cpu)
