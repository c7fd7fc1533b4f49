"""Browser fixtures: a fresh build of the site, served on 127.0.0.1, driven by
headless Debian Chromium through Playwright (never `playwright install`).
Helpers the tests call directly live in pagekit.py.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import pytest
from pagekit import CHROMIUM, CHROMIUM_ARGS, REPO, BootedPage, Site, open_page

sys.path.insert(0, str(REPO))
import build  # noqa: E402  (build.py at the repository root)


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


@pytest.fixture(scope="session")
def sample_capture() -> Path:
    """The page's built-in sample capture."""
    return REPO / "static" / "sample.pcap"
