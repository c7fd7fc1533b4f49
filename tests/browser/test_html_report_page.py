"""Download report (HTML), over http and from file://: the CLI's `analyze
--html` document byte for byte, opening with no request but its own, showing
the findings the page shows; and print stylesheets for the page and the report."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from locations import FIXTURES, REPO, SHARED_CAPTURES
from pagekit import cli_report, open_capture, select_tab

CAPTURE = SHARED_CAPTURES / "sngrep__aaa.pcap"  # registrations, failed calls, DNS: findings of every severity


def cli_html(path, out):
    subprocess.run([sys.executable, "-m", "sipdiag", "analyze", str(path), "--html", str(out)], cwd=REPO,
                   env={**os.environ, "PYTHONPATH": str(REPO / "py")}, check=True, capture_output=True)
    return out.read_bytes()


@pytest.fixture(params=["page_ready", "single_file_page_ready"], ids=["http", "file"])
def opened(request):
    page = request.getfixturevalue(request.param).page
    open_capture(page, CAPTURE)
    return page


def test_the_html_report_is_the_clis_and_opens_with_nothing_to_fetch(opened, browser, tmp_path):
    page = opened
    with page.expect_download() as download:
        page.locator("#download-html").click()
    assert download.value.suggested_filename == f"{CAPTURE.name}.sipdiag.html"
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    assert saved.read_bytes() == cli_html(CAPTURE, tmp_path / "cli.html")

    select_tab(page, "findings")
    page_findings = list(zip(page.locator("#tab-panel .finding-code").all_inner_texts(),
                             page.locator("#tab-panel .finding-summary").all_inner_texts()))
    expected = cli_report(CAPTURE)
    assert len(page_findings) == len(expected["findings"]) > 0

    context = browser.new_context()
    requests = []
    context.on("request", lambda request: requests.append(request.url))
    report = context.new_page()
    report.goto(saved.as_uri())
    report.wait_for_load_state("load")
    assert requests == [saved.as_uri()]
    shown = list(zip(report.locator(".finding code").all_inner_texts(), report.locator(".finding .summary").all_inner_texts()))
    assert shown == page_findings  # the same findings, in the same order
    assert report.locator("svg.ladder-svg").count() == len(expected["calls"])  # one per call (none has legs here)
    context.close()


def test_printing_the_page_leaves_the_controls_and_the_dark_theme_out(browser, site):
    context = browser.new_context(color_scheme="dark", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(site.base_url)
    page.evaluate("() => new Promise((r) => { const c = () => (window.sipdiag ? r() : setTimeout(c, 20)); c(); })")
    page.evaluate("window.sipdiag.ready")
    open_capture(page, CAPTURE)
    select_tab(page, "calls")
    page.locator("#tab-panel .call-row").first.click()
    page.locator("#tab-panel .ladder-arrow").first.wait_for()
    style = """(selector) => { const s = getComputedStyle(document.querySelector(selector));
      return {display: s.display, color: s.color, background: s.backgroundColor, overflow: s.overflow}; }"""
    assert page.evaluate(style, "body")["background"] == "rgb(21, 24, 28)"  # dark on screen
    page.emulate_media(media="print")
    assert page.evaluate(style, "body")["background"] == "rgb(255, 255, 255)"
    assert page.evaluate(style, "body")["color"] == "rgb(27, 27, 27)"  # the light theme's text
    for hidden in ("#tabs", "#open", ".downloads", "#tab-panel .ladder-tools", "#tab-panel .call-filters"):
        assert page.evaluate(style, hidden)["display"] == "none", hidden
    assert page.evaluate(style, "#tab-panel .ladder-scroll")["overflow"] == "visible"
    width = page.evaluate("() => document.querySelector('#tab-panel .ladder-svg').getBoundingClientRect().width")
    assert width <= page.evaluate("() => document.querySelector('#tab-panel').getBoundingClientRect().width")
    assert len(page.pdf()) > 10_000  # Chromium's "Save as PDF" of the page
    context.close()


def test_the_html_reports_ladders_fit_the_paper_when_printed(browser, tmp_path):
    saved = tmp_path / "report.html"
    saved.write_bytes(cli_html(CAPTURE, saved))
    context = browser.new_context(viewport={"width": 700, "height": 900})
    page = context.new_page()
    page.goto(saved.as_uri())
    page.emulate_media(media="print")
    widths = page.evaluate("() => [...document.querySelectorAll('svg.ladder-svg')].map((svg) => "
                           "svg.getBoundingClientRect().width)")
    assert widths and max(widths) <= 700
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 700
    context.close()


AXE_RUN = """async () => (await axe.run(document, { resultTypes: ["violations"] })).violations
  .filter((violation) => violation.impact === "serious" || violation.impact === "critical")
  .map((violation) => `${violation.id}: ${violation.nodes.slice(0, 3).map((node) => node.target.join(" ")).join(", ")}`)"""


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_axe_finds_no_serious_violation_in_the_html_report(browser, tmp_path, scheme):
    saved = tmp_path / "report.html"
    saved.write_bytes(cli_html(FIXTURES / "media" / "media_pbx_direct.pcap", saved))  # legs, RTP, SDP
    context = browser.new_context(color_scheme=scheme)
    page = context.new_page()
    page.goto(saved.as_uri())
    page.evaluate((REPO / "node_modules" / "axe-core" / "axe.min.js").read_text())
    assert page.evaluate(AXE_RUN) == []
    assert page.locator("svg.ladder-svg [tabindex]").count() == 0  # nothing to click there: no focus stops
    context.close()

