"""Accessibility and small screens, in both builds (folder site over HTTP,
single file from file://): axe-core finds no serious or critical violation on
any tab in the light and the dark theme; at 390×844 no tab scrolls sideways;
tabs follow the ARIA tab pattern; rows and ladder arrows open with Enter;
every form control has a real label.

axe-core comes from npm as a devDependency, for these tests only: it is read
from node_modules and evaluated into the page by Playwright (which the page's
Content-Security-Policy does not govern), never shipped (test_build checks)."""

from __future__ import annotations

import pytest
from locations import FIXTURES, REPO, SHARED_CAPTURES
from pagekit import TABS, cli_report, open_capture, open_everything, select_tab

AXE = REPO / "node_modules" / "axe-core" / "axe.min.js"
SAMPLE = REPO / "static" / "sample.pcap"
# The sample; a shared capture with calls, registrations and 303 DNS queries; a DNS failure.
AXE_CAPTURES = [SAMPLE, SHARED_CAPTURES / "sngrep__aaa.pcap", FIXTURES / "dns" / "dns_timeout_no_register.pcap"]
# Those, and long IPv6 addresses, RTP bands, SIP over WebSocket, another link layer.
NARROW_CAPTURES = AXE_CAPTURES + [
    SHARED_CAPTURES / "heplify__sip_ipv6_udp.pcap",
    FIXTURES / "calls" / "call_one_way_rtp_private_sdp.pcap",
    SHARED_CAPTURES / "heplify__sip_tcp_websocket.pcap",
    SHARED_CAPTURES / "rtcagent__dump.pcap",
]
PHONE = {"width": 390, "height": 844}

AXE_RUN = """async () => {
  const { violations } = await axe.run(document, { resultTypes: ["violations"] });
  return violations
    .filter((violation) => violation.impact === "serious" || violation.impact === "critical")
    .map((violation) => `${violation.id}: ${violation.nodes.slice(0, 3).map((node) => node.target.join(" ")).join(", ")}`);
}"""


@pytest.fixture(scope="module", params=["http", "file"])
def booted(request):
    """The folder site over HTTP, then the single file from file://."""
    return request.getfixturevalue("page_ready" if request.param == "http" else "single_file_page_ready")


def test_axe_finds_no_serious_violation_on_any_tab(booted):
    page = booted.page
    page.evaluate(AXE.read_text())
    problems = []
    try:
        for capture in AXE_CAPTURES:
            open_capture(page, capture)
            for scheme in ("light", "dark"):
                page.emulate_media(color_scheme=scheme)
                for tab in TABS:
                    select_tab(page, tab)
                    open_everything(page, tab)
                    problems += [f"{capture.name} {scheme} {tab}: {violation}" for violation in page.evaluate(AXE_RUN)]
    finally:
        page.emulate_media(color_scheme="light")
    assert problems == []


def test_axe_sees_a_contrast_failure(booted):
    """The check above can fail: a badge coloured like the old WARNING badge (2.4:1) is reported."""
    page = booted.page
    page.evaluate(AXE.read_text())
    open_capture(page, SAMPLE)
    page.evaluate("""() => {
      const badge = document.querySelector(".finding-count");
      badge.style.background = "#ef8f00";
      badge.style.color = "#ffffff";
    }""")
    try:
        assert any(violation.startswith("color-contrast:") for violation in page.evaluate(AXE_RUN))
    finally:
        page.evaluate('() => document.querySelector(".finding-count").removeAttribute("style")')


def test_nothing_scrolls_sideways_on_a_phone(booted):
    page = booted.page
    page.set_viewport_size(PHONE)
    wide = []
    try:
        for capture in NARROW_CAPTURES:
            open_capture(page, capture)
            for tab in TABS:
                select_tab(page, tab)
                open_everything(page, tab)
                width = page.evaluate("document.documentElement.scrollWidth")
                if width > PHONE["width"]:
                    wide.append(f"{capture.name} {tab}: {width} px")
        # The Redact tab's results: counts, mapping and summary tables.
        open_capture(page, SAMPLE)
        select_tab(page, "redact")
        page.locator("#tab-panel .redact-start").click()
        page.locator("#tab-panel .redact-verified").wait_for(timeout=120_000)
        open_everything(page, "redact")
        width = page.evaluate("document.documentElement.scrollWidth")
        if width > PHONE["width"]:
            wide.append(f"sample.pcap redacted: {width} px")
    finally:
        page.set_viewport_size({"width": 1280, "height": 720})
    assert wide == []


def test_tabs_follow_the_aria_tab_pattern(booted):
    page = booted.page
    expected = cli_report(SHARED_CAPTURES / "sngrep__aaa.pcap")
    # The RTP streams tab counts each stream of the calls once.
    streams = {(media["src"], media["dst"], media["ssrc"]) for call in expected["calls"] for media in call["media"]}
    open_capture(page, SHARED_CAPTURES / "sngrep__aaa.pcap")
    tabs = page.locator("#tabs [role=tab]")
    assert page.locator("#tabs").get_attribute("role") == "tablist"
    assert tabs.all_inner_texts() == [
        f"Findings ({len(expected['findings'])})", f"Registrations ({len(expected['registrations'])})",
        f"Calls ({len(expected['calls'])})", f"DNS ({len(expected['dns'])})",
        f"SIP messages ({len(expected['sip_messages'])})", f"RTP streams ({len(streams)})", "Redact",
    ]
    panel = page.locator("#tab-panel")
    assert panel.get_attribute("role") == "tabpanel"

    def state():
        return tabs.evaluate_all("""(tabs) => tabs.map((tab) => [tab.dataset.tab, tab.getAttribute("aria-selected"),
                                                               tab.tabIndex, tab.getAttribute("aria-controls")])""")

    def selected():
        [name] = [name for name, chosen, _, _ in state() if chosen == "true"]
        assert page.evaluate("document.activeElement.dataset.tab") == name
        assert panel.get_attribute("aria-labelledby") == f"tab-{name}"
        return name

    # One tab in the Tab order (the selected one); every tab controls the panel.
    assert all(controls == "tab-panel" and tab_index == (0 if chosen == "true" else -1)
               for _, chosen, tab_index, controls in state())
    tabs.first.focus()
    page.keyboard.press("ArrowRight")
    assert selected() == "registrations"
    assert panel.locator(".reg-row").count() == len(expected["registrations"])
    page.keyboard.press("End")
    assert selected() == "redact"
    page.keyboard.press("ArrowRight")  # wraps round
    assert selected() == "findings"
    page.keyboard.press("ArrowLeft")
    assert selected() == "redact"
    page.keyboard.press("Home")
    assert selected() == "findings"


def test_enter_opens_rows_and_ladder_arrows(booted):
    page = booted.page
    open_capture(page, SHARED_CAPTURES / "sngrep__aaa.pcap")
    panel = page.locator("#tab-panel")

    select_tab(page, "messages")
    row = panel.locator("tr.clickable").first
    row.focus()
    page.keyboard.press("Enter")
    assert panel.locator("pre.message-text").first.is_visible()

    select_tab(page, "registrations")
    panel.locator(".reg-row").first.focus()
    page.keyboard.press("Enter")
    assert panel.locator(".reg-detail-row:not([hidden])").count() == 1

    select_tab(page, "calls")
    panel.locator(".call-row").nth(1).focus()
    page.keyboard.press("Enter")
    arrow = panel.locator(".ladder-arrow").first
    assert arrow.get_attribute("tabindex") == "0" and arrow.get_attribute("role") == "button"
    arrow.focus()
    page.keyboard.press("Enter")
    assert "INVITE sip:" in panel.locator(".ladder-message").inner_text()
    assert page.evaluate("document.activeElement.classList.contains('ladder-arrow')")


def test_every_form_control_has_a_label(booted):
    page = booted.page
    open_capture(page, SHARED_CAPTURES / "sngrep__aaa.pcap")
    unlabelled = []
    for tab in TABS:
        select_tab(page, tab)
        open_everything(page, tab)
        unlabelled += page.evaluate("""() => [...document.querySelectorAll("input, select, textarea")]
          .filter((control) => !control.labels.length || ![...control.labels].some((label) => label.textContent.trim()))
          .map((control) => control.outerHTML.slice(0, 80))""")
    assert unlabelled == []


def test_words_not_identifiers(booted):
    """Link layers by name, and none of the report's identifiers (no_response, some_fail) as text."""
    page = booted.page
    for capture, link_layer in [(SHARED_CAPTURES / "sngrep__aaa.pcap", "Ethernet"),
                                (SHARED_CAPTURES / "rtcagent__dump.pcap", "Linux cooked capture"),
                                (FIXTURES / "encap" / "encap_mixed.pcapng", "Ethernet, PPP, Linux netfilter log (NFLOG)")]:
        open_capture(page, capture)
        assert page.locator("#capture-summary dt:text-matches('^Link layers?$') + dd").inner_text() == link_layer
    report = cli_report(SHARED_CAPTURES / "sngrep__aaa.pcap")
    identifiers = {row["outcome"] for row in report["registrations"] + report["calls"]}
    identifiers |= {registrar["pattern"] for registrar in report["registrars"]}
    identifiers |= {str(status) for registrar in report["registrars"] for status in registrar["failed_by_status"]}
    identifiers |= {step["state"] for chain in report["dns_chains"] for step in chain["steps"]}
    identifiers = {name for name in identifiers if "_" in name}
    assert identifiers  # the capture has some to get wrong
    open_capture(page, SHARED_CAPTURES / "sngrep__aaa.pcap")
    for tab in TABS:
        select_tab(page, tab)
        open_everything(page, tab)
        text = page.inner_text("#tab-panel")
        assert [name for name in identifiers if name in text] == [] and "×" not in text, tab
