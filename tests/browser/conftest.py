"""Browser fixtures: a fresh build of the site, served on 127.0.0.1, driven by
headless Debian Chromium through Playwright (never `playwright install`).

Other browser tests reuse `site`, `browser`, `page_ready` (one booted page per
test module), `analyze_in_page` and `cli_report`.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
import build  # noqa: E402  (build.py at the repository root)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
BOOT_TIMEOUT_MS = 60_000


@dataclass
class Site:
    directory: Path
    base_url: str  # http://127.0.0.1:PORT/

    @property
    def single_file_url(self) -> str:
        return (self.directory / "sipdiag.html").as_uri()


@pytest.fixture(scope="session")
def site(tmp_path_factory) -> Site:
    """A build of the current tree in a private folder (no race with dist/), served over HTTP."""
    directory = build.build(tmp_path_factory.mktemp("site") / "dist")
    server = build.site_server(directory, 0, quiet=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield Site(directory, f"http://127.0.0.1:{server.server_port}/")
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@dataclass
class BootedPage:
    page: object  # playwright Page
    url: str
    requests: list[str] = field(default_factory=list)  # every URL the page or its worker asked for
    console_errors: list[str] = field(default_factory=list)  # includes Content-Security-Policy violations

    def foreign_requests(self) -> list[str]:
        """Requests that left the page's own origin (blob:/data: stay inside the page)."""
        origin = urlsplit(self.url)
        return [url for url in self.requests
                if urlsplit(url).scheme not in ("blob", "data")
                and (urlsplit(url).scheme, urlsplit(url).netloc) != (origin.scheme, origin.netloc)]


def wait_for_api(page) -> None:
    """Wait for window.sipdiag. (page.wait_for_function evaluates strings, which the CSP rightly forbids.)"""
    page.evaluate("""() => new Promise((resolve) => {
      const check = () => (window.sipdiag ? resolve() : setTimeout(check, 20));
      check();
    })""")


def open_page(browser, url: str) -> BootedPage:
    context = browser.new_context(accept_downloads=True)
    page = context.new_page()
    booted = BootedPage(page, url)
    # context-level events also see the worker's requests
    context.on("request", lambda request: booted.requests.append(request.url))
    page.on("console", lambda message: message.type == "error" and booted.console_errors.append(message.text))
    page.goto(url)
    wait_for_api(page)
    page.evaluate("window.sipdiag.ready")
    return booted


@pytest.fixture(scope="module")
def page_ready(browser, site) -> BootedPage:
    """The folder site over HTTP with its engine booted, shared by one test module."""
    booted = open_page(browser, site.base_url)
    yield booted
    booted.page.context.close()


@pytest.fixture(scope="module")
def single_file_page_ready(browser, site) -> BootedPage:
    """dist/sipdiag.html opened from file://, engine booted."""
    booted = open_page(browser, site.single_file_url)
    yield booted
    booted.page.context.close()


ANALYZE_SCRIPT = """async ([name, data]) => {
  const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
  return await window.sipdiag.analyze(new File([bytes], name));
}"""


def analyze_in_page(booted: BootedPage, path: Path, name: str | None = None) -> dict:
    """window.sipdiag.analyze on a file's bytes, named like the file; returns the report."""
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return booted.page.evaluate(ANALYZE_SCRIPT, [name or Path(path).name, data])


def cli_report(path: Path) -> dict:
    """What `python3 -m sipdiag analyze PATH --json` prints."""
    output = subprocess.run([sys.executable, "-m", "sipdiag", "analyze", str(path), "--json"], cwd=REPO,
                            env={**os.environ, "PYTHONPATH": str(REPO / "py")}, capture_output=True, check=True)
    return json.loads(output.stdout)


@pytest.fixture(scope="session")
def sample_capture(shared_captures) -> Path:
    """The page's built-in sample; a small shared capture stands in until static/sample.pcap exists."""
    sample = REPO / "static" / "sample.pcap"
    return sample if sample.exists() else shared_captures / "pcapplusplus__sip_resp.pcap"
