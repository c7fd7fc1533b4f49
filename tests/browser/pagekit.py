"""Driving the built site in headless Debian Chromium: the helpers browser
tests import by name (fixtures live in conftest.py, which is not importable
under one name when the whole suite runs)."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from locations import REPO

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


@dataclass
class Site:
    directory: Path
    base_url: str  # http://127.0.0.1:PORT/

    @property
    def single_file_url(self) -> str:
        return (self.directory / "sipdiag.html").as_uri()


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


ANALYZE_SCRIPT = """async ([name, data]) => {
  const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
  return await window.sipdiag.analyze(new File([bytes], name));
}"""


def analyze_in_page(booted: BootedPage, path: Path, name: str | None = None) -> dict:
    """window.sipdiag.analyze on a file's bytes, named like the file; returns the report."""
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return booted.page.evaluate(ANALYZE_SCRIPT, [name or Path(path).name, data])


def cli_json(path: Path, with_text: bool = False) -> bytes:
    """What `python3 -m sipdiag analyze PATH --json` (with `--with-text`: and each message's text) prints."""
    output = subprocess.run([sys.executable, "-m", "sipdiag", "analyze", str(path), "--json"]
                            + (["--with-text"] if with_text else []), cwd=REPO,
                            env={**os.environ, "PYTHONPATH": str(REPO / "py")}, capture_output=True, check=True)
    return output.stdout


def cli_report(path: Path, with_text: bool = False) -> dict:
    """The report `analyze PATH --json` prints (the page's: no message text), or with `--with-text`'s text."""
    return json.loads(cli_json(path, with_text))


def message_text_shown(page, selector: str = "pre.message-text") -> str:
    """The text of the message shown, once the worker has read it from the file."""
    shown = page.locator(f"{selector}:not(.loading)")
    shown.wait_for()
    return shown.text_content()


def open_capture(page, path: Path) -> None:
    """Choose a capture with the page's file input and wait until its report is shown."""
    # The status may still name this file from an earlier opening: clear it, so
    # the wait below is for this analysis.
    page.evaluate('() => { document.getElementById("engine-status").textContent = ""; }')
    page.set_input_files("#file-input", str(path))
    page.locator("#engine-status", has_text=f"analyzed {path.name}").wait_for(timeout=60_000)


TABS = ("findings", "registrations", "calls", "dns", "messages", "rtp", "redact")


def select_tab(page, name: str) -> None:
    page.locator(f'#tabs [data-tab="{name}"]').click()
    wait_for_rows(page)


def wait_for_hash(page, expected: str) -> None:
    """Until the URL hash is this (Back and Forward land after go_back() returns), and its rows are there."""
    page.evaluate("""(expected) => new Promise((resolve) => {
      const check = () => (location.hash === expected ? resolve() : setTimeout(check, 20));
      check();
    })""", expected)
    wait_for_rows(page)


def wait_for_rows(page) -> None:
    """Until every table of the panel has the rows the worker serves (they come
    asynchronously, after a tab opens, a sort, a filter or a page change)."""
    page.locator("#tab-panel").evaluate("""(panel) => new Promise((resolve) => {
      const check = () => (panel.querySelector('[aria-busy="true"]') ? setTimeout(check, 20) : resolve());
      check();
    })""")


def open_everything(page, tab: str) -> None:
    """Show what a tab hides until asked: every <details>, the first call with
    a clicked arrow, the first registration's timeline, the first message's text,
    the first RTP stream's plot and player.
    Tabs keep their state, so what is already open stays open (no toggling shut)."""
    panel = page.locator("#tab-panel")
    panel.evaluate("(panel) => panel.querySelectorAll('details').forEach((details) => (details.open = true))")
    if tab == "calls" and panel.locator(".call-row").count():
        panel.locator(".call-row").first.click()
        panel.locator(".ladder-arrow").first.click()
        panel.locator(".ladder-message, .ladder-panel .error").first.wait_for()  # the worker reads it from the file
    if tab == "registrations" and panel.locator(".reg-row").count() and not panel.locator(".reg-row-open").count():
        panel.locator(".reg-row").first.click()
    if tab == "messages" and panel.locator("tr.clickable").count() and not panel.locator(".message-text-row").count():
        panel.locator("tr.clickable").first.click()
        panel.locator("pre.message-text:not(.loading)").wait_for()
    if tab == "rtp" and panel.locator(".rtp-row").count():
        if not panel.locator(".rtp-row.rtp-selected").count():
            panel.locator(".rtp-row").first.click()
        # The stream is measured in the worker: wait for its plot and player (or the reason it has none).
        panel.locator(".rtp-player, .rtp-status.error").first.wait_for(timeout=60_000)
