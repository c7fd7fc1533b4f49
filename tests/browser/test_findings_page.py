"""The Findings tab shows the report's diagnosis: each cause with its count and
its instances (each naming its call, registration or lookup), and the findings
a cause explains under it."""

from __future__ import annotations

from locations import FIXTURES, SHARED_CAPTURES
from pagekit import cli_report, open_capture, select_tab

DNS_NXDOMAIN = FIXTURES / "dns" / "dns_nxdomain_no_register.pcap"
SIGNALLING_ONLY = SHARED_CAPTURES / "heplify__erspan_sip_ipv4_udp.pcapng"


def test_a_cause_shows_its_lookups_and_the_finding_it_explains(page_ready):
    page = page_ready.page
    open_capture(page, DNS_NXDOMAIN)
    cause, explained = cli_report(DNS_NXDOMAIN)["findings"]
    select_tab(page, "findings")
    tree = page.locator("#tab-panel .finding-cause")
    assert tree.count() == 1
    head = tree.locator(f'details.finding[data-id="{cause["id"]}"] > summary')
    assert head.inner_text().split("\n") == ["ERROR", "DNS_FAILURE", cause["summary"]]  # the badge is upper-cased by CSS
    under = tree.locator(".finding-explained details.finding")
    assert under.evaluate_all("els => els.map((e) => e.dataset.code)") == ["NO_REGISTER_DNS_SUSPECT"]
    assert tree.locator(".finding-explained").get_attribute("aria-label") == "Explained by DNS_FAILURE"
    head.click()
    instances = tree.locator(f'details.finding[data-id="{cause["id"]}"] .finding-instance > summary')
    assert instances.all_inner_texts() == [i["summary"] for i in cause["instances"]]
    assert page.locator("#tab-panel h4", has_text="Instances (3)").count() == 1
    # Each instance opens to its own evidence, which opens the message list there.
    instances.nth(1).click()
    link = tree.locator(".finding-instance[open] .finding-frame").first
    assert link.get_attribute("data-frame") == str(cause["instances"][1]["frames"][0])


def test_calls_of_one_cause_are_named_and_the_call_view_shows_their_finding(page_ready):
    page = page_ready.page
    open_capture(page, SIGNALLING_ONLY)
    report = cli_report(SIGNALLING_ONLY)
    (missing,) = [f for f in report["findings"] if f["code"] == "RTP_MISSING"]
    select_tab(page, "findings")
    finding = page.locator(f'#tab-panel details.finding[data-id="{missing["id"]}"]')
    finding.locator("> summary").click()
    named = finding.locator(".finding-instance > summary").all_inner_texts()
    assert named == [i["summary"] for i in missing["instances"]] and len(named) == 3
    assert all(f"(Call-ID {i['call_id']})" in text for i, text in zip(missing["instances"], named))
    # A call's own view lists the grouped finding its Call-ID is an instance of.
    select_tab(page, "calls")
    page.locator("#tab-panel .call-row").nth(2).click()
    codes = page.locator("#tab-panel .call-detail details.finding").evaluate_all("els => els.map((e) => e.dataset.code)")
    assert "RTP_MISSING" in codes
