"""The page's tables in both builds (folder over HTTP, single file from
file://): rows come from the worker sorted, filtered and searched there, every
evidence link of the Findings tab lands on a visible row, and the URL hash
carries the tab and the selection so Back and Forward restore them.

Expected rows are worked out here from the CLI's report with plain Python,
independently of report_tables."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from locations import FIXTURES, SHARED_CAPTURES
from pagekit import cli_report, open_capture, select_tab, wait_for_hash, wait_for_rows

AAA = SHARED_CAPTURES / "sngrep__aaa.pcap"


@pytest.fixture(scope="module", params=["http", "file"])
def booted(request):
    return request.getfixturevalue("page_ready" if request.param == "http" else "single_file_page_ready")


@pytest.fixture(scope="module")
def aaa() -> dict:
    return cli_report(AAA, with_text=True)  # what a search reads: the worker reads it from the file


def hash_value(value: str) -> str:
    """As JavaScript's encodeURIComponent writes it into the hash."""
    return quote(value, safe="-_.!~*'()")


def shown_frames(page) -> list[int]:
    wait_for_rows(page)
    return [int(frame) for frame in page.locator("#tab-panel table.messages tr.message-row").evaluate_all(
        "rows => rows.map((row) => row.dataset.frame)")]


def test_messages_sort_filter_and_search(booted, aaa):
    page = booted.page
    open_capture(page, AAA)
    select_tab(page, "messages")
    panel = page.locator("#tab-panel")
    messages = aaa["sip_messages"]
    assert shown_frames(page) == [m["frame"] for m in messages]

    # CSeq is a number: 10 after 9. Twice is descending; ties stay in capture order.
    cseq = panel.locator('table.messages th[data-column="cseq"] .sort-button')
    cseq.click()
    assert shown_frames(page) == [m["frame"] for m in sorted(messages, key=lambda m: m["cseq"])]
    cseq.click()
    assert shown_frames(page) == [m["frame"] for m in sorted(messages, key=lambda m: m["cseq"], reverse=True)]
    assert panel.locator('table.messages th[data-column="cseq"]').get_attribute("aria-sort") == "descending"
    panel.locator('table.messages th[data-column="frame"] .sort-button').click()
    assert shown_frames(page) == [m["frame"] for m in messages]

    # INVITE's transaction, its 4xx answers only.
    panel.locator("select.message-method").select_option("INVITE")
    invite = [m for m in messages if "INVITE" in (m["method"], m["cseq_method"])]
    assert shown_frames(page) == [m["frame"] for m in invite]
    panel.locator("select.message-status").select_option("4xx")
    assert shown_frames(page) == [m["frame"] for m in invite if m["status"] and m["status"] // 100 == 4] != []
    panel.locator("select.message-method").select_option("")
    panel.locator("select.message-status").select_option("")

    # Header text the table's columns do not show, and SDP bodies.
    search = panel.locator("input.filter")
    for needle in ("user-agent: nero sipps", "m=audio"):
        search.fill(needle)
        expected = [m["frame"] for m in messages if needle.lower() in m["text"].lower()]
        assert shown_frames(page) == expected and expected
    search.fill("")
    call_id = messages[-1]["call_id"]
    panel.locator("input.message-call-id").fill(call_id)
    assert shown_frames(page) == [m["frame"] for m in messages if call_id in m["call_id"]]
    panel.locator("input.message-call-id").fill("")
    panel.locator("input.message-address").fill("200.68.120.81")
    assert shown_frames(page) == [m["frame"] for m in messages if "200.68.120.81" in (m["src_ip"], m["dst_ip"])]
    panel.locator("input.message-address").fill("")
    assert shown_frames(page) == [m["frame"] for m in messages]
    # Long values are cut in the cell and whole on hover.
    cell = panel.locator("tr.message-row td.elide").last
    assert cell.get_attribute("title") == cell.inner_text() == messages[-1]["call_id"]


def test_messages_come_a_page_at_a_time(booted, tmp_path):
    """1,200 SIP messages: pages of 500, the pager moves between them, a search narrows to one."""
    from packet_builders import ethernet, ipv4, pcap, udp

    options = [b"OPTIONS sip:probe@10.0.0.2 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK%d\r\n"
               b"Call-ID: probe-%d@10.0.0.1\r\nCSeq: %d OPTIONS\r\nContent-Length: 0\r\n\r\n" % (n, n, n)
               for n in range(1200)]
    path = tmp_path / "options-flood.pcap"
    path.write_bytes(pcap([(1_700_000_000 + n, 0, ethernet(ipv4(udp(m))), len(ethernet(ipv4(udp(m)))))
                           for n, m in enumerate(options)]))
    page = booted.page
    open_capture(page, path)
    select_tab(page, "messages")
    panel = page.locator("#tab-panel")
    position = panel.locator(".page-position").first
    assert shown_frames(page) == list(range(1, 501)) and position.inner_text() == "rows 1–500 of 1200"
    panel.locator(".page-next").first.click()
    assert shown_frames(page) == list(range(501, 1001)) and position.inner_text() == "rows 501–1000 of 1200"
    panel.locator(".page-next").first.click()
    assert shown_frames(page) == list(range(1001, 1201)) and panel.locator(".page-next").first.is_disabled()
    # Sorting starts again from the first page: the highest CSeq first.
    panel.locator('table.messages th[data-column="cseq"] .sort-button').click()
    panel.locator('table.messages th[data-column="cseq"] .sort-button').click()
    assert shown_frames(page) == list(range(1200, 700, -1))
    panel.locator("input.filter").fill("probe-1199@")
    assert shown_frames(page) == [1200] and panel.locator(".pager").first.is_hidden()


COUNT_SEARCHES = """() => {
  window.searchesAsked = [];
  const rows = window.sipdiag.rows;
  window.sipdiag.rows = (report, query) => {
    if (query.table === "messages") window.searchesAsked.push(query.search);
    return rows(report, query);
  };
}"""


def test_a_search_typed_key_by_key_asks_the_worker_once(booted, aaa):
    """A search reads every message's text from the file: typing waits for a pause, not one search per key."""
    page = booted.page
    open_capture(page, AAA)
    select_tab(page, "messages")
    page.evaluate(COUNT_SEARCHES)
    page.locator("#tab-panel input.filter").press_sequentially("m=audio", delay=30)
    expected = [m["frame"] for m in aaa["sip_messages"] if "m=audio" in m["text"].lower()]
    assert shown_frames(page) == expected and expected
    assert page.evaluate("window.searchesAsked") == ["m=audio"]


def test_calls_table_sorts_and_shows_media_per_direction(booted):
    page = booted.page
    path = SHARED_CAPTURES / "heplify__rtp_rtcp_sip_ipv4_udp.pcap"
    report = cli_report(path)
    open_capture(page, path)
    select_tab(page, "calls")
    panel = page.locator("#tab-panel")
    rows = panel.locator("tr.call-row")
    header = panel.locator("table.calls th").evaluate_all("cells => cells.map((cell) => cell.textContent)")
    column = {name: header.index(name) for name in header}
    cells = rows.first.locator("td")
    call = next(c for c in report["calls"] if c["media"])
    forward = [m for m in call["media"] if m["direction"] == "caller_to_callee"]
    back = [m for m in call["media"] if m["direction"] == "callee_to_caller"]
    assert cells.nth(column["Media →"]).inner_text().startswith(f"{sum(m['packets'] for m in forward)} pkts")
    assert cells.nth(column["Media ←"]).inner_text().startswith(f"{sum(m['packets'] for m in back)} pkts")
    assert cells.nth(column["MOS ←"]).inner_text() == str(min(m["mos_estimate"] for m in back))
    # The call without media sorts after the one with (an empty value sorts last), either way.
    by_media = panel.locator('table.calls th[data-column="media_back"] .sort-button')
    by_media.click()
    wait_for_rows(page)
    assert rows.first.get_attribute("class").count("call-row") and rows.nth(1).locator("td").nth(
        column["Media ←"]).inner_text() == "no media"
    # Clicking a row opens its ladder in view, and the URL names the call.
    rows.first.click()
    panel.locator(".call-detail .ladder-svg").wait_for(state="visible")  # the engine draws it (a worker request)
    assert page.evaluate("location.hash") == f"#calls/call/{hash_value(call['call_id'])}"
    top = panel.locator(".call-detail").evaluate("(node) => node.getBoundingClientRect().top")
    assert -2 <= top < page.viewport_size["height"]  # scrolled to its start (sub-pixel)


def test_a_one_way_call_says_no_media_back_and_shows_its_findings(booted):
    page = booted.page
    path = FIXTURES / "calls" / "call_one_way_rtp_private_sdp.pcap"
    report = cli_report(path)
    open_capture(page, path)
    select_tab(page, "calls")
    row = page.locator("#tab-panel tr.call-row").first
    text = row.inner_text()
    worst = "error" if any(f["severity"] == "error" for f in report["findings"] if f.get("call_id")) else "warning"
    assert "no media back" in text or "none from the caller" in text
    assert row.locator(f".finding-severity-{worst}").count() == 1


def evidence_targets(page) -> list[tuple[str, str]]:
    """Every evidence link of the Findings tab: (selector, its label)."""
    select_tab(page, "findings")
    page.locator("#tab-panel").evaluate("(panel) => panel.querySelectorAll('details').forEach((d) => (d.open = true))")
    links = page.locator("#tab-panel .finding-frame, #tab-panel .finding-call")
    return [(link.get_attribute("data-frame") or link.get_attribute("data-call-id"), link.get_attribute("class"))
            for link in links.all()]


@pytest.mark.parametrize("path", [
    SHARED_CAPTURES / "sngrep__aaa.pcap",                 # SIP and DNS frames, registration and call Call-IDs
    SHARED_CAPTURES / "pcapplusplus__DNS_NXDomain.pcap",  # an answer whose query is not in the capture
    SHARED_CAPTURES / "sngrep__tlssaved.pcap",            # TLS connections
    SHARED_CAPTURES / "redrabbit__h263-over-rtp.pcap",    # an RTP frame
    FIXTURES / "registration" / "reg_icmp_unreachable.pcap",  # ICMP errors
    FIXTURES / "calls" / "call_one_way_rtp_private_sdp.pcap",
], ids=lambda path: path.stem)
def test_every_evidence_link_lands_on_a_visible_row(booted, path):
    page = booted.page
    open_capture(page, path)
    links = evidence_targets(page)
    assert links
    # One click per distinct target: the same frame cited twice lands on the same row.
    for value, kind in dict.fromkeys(links):
        select_tab(page, "findings")
        selector = f'[data-frame="{value}"]' if "finding-frame" in kind else f'[data-call-id="{value}"]'
        page.locator(f"#tab-panel {selector}").first.click()
        target = page.locator("#tab-panel .route-target")
        target.wait_for(state="visible")
        wait_for_rows(page)
        assert target.inner_text().strip(), (value, page.evaluate("location.hash"))
        tab = page.evaluate("location.hash").split("/")[0]
        if "finding-frame" in kind:
            assert tab in ("#messages", "#dns", "#calls", "#rtp") and page.evaluate("location.hash").endswith(f"/{hash_value(value)}")
            # The row shows the frame it was opened for.
            assert value in target.inner_text() or tab == "#calls"
        else:
            assert tab in ("#calls", "#registrations", "#messages")


def test_back_and_forward_restore_tab_and_selection(booted, aaa):
    page = booted.page
    open_capture(page, AAA)
    panel = page.locator("#tab-panel")
    select_tab(page, "calls")
    call = aaa["calls"][1]
    panel.locator("tr.call-row").nth(1).click()
    assert page.evaluate("location.hash") == f"#calls/call/{hash_value(call['call_id'])}"
    select_tab(page, "messages")
    message = aaa["sip_messages"][5]
    panel.locator(f'tr.message-row[data-frame="{message["frame"]}"]').click()
    assert page.evaluate("location.hash") == f"#messages/frame/{message['frame']}"
    select_tab(page, "registrations")
    panel.locator("tr.reg-row").nth(1).click()
    assert page.evaluate("location.hash") == "#registrations/registration/1"

    # Each tab chosen and each row opened is a step of the history.
    page.go_back()
    wait_for_hash(page, "#registrations")
    page.go_back()
    wait_for_hash(page, f"#messages/frame/{message['frame']}")
    assert panel.locator(f'tr.message-row.route-target[data-frame="{message["frame"]}"] + tr pre.message-text').is_visible()
    page.go_back()
    wait_for_hash(page, "#messages")
    page.go_back()
    wait_for_hash(page, f"#calls/call/{hash_value(call['call_id'])}")
    page.locator("#tab-panel .call-detail.route-target").wait_for()
    assert panel.locator(".call-detail h3").inner_text() == f"Call {call['call_id']}"
    assert panel.locator("tr.call-row.call-selected").count() == 1
    for expected in ("#messages", f"#messages/frame/{message['frame']}", "#registrations",
                     "#registrations/registration/1"):
        page.go_forward()
        wait_for_hash(page, expected)
    page.locator("#tab-panel tr.reg-row.route-target").wait_for()
    assert panel.locator(".reg-detail-row:not([hidden])").count() == 1
    # Choosing a tab again returns to its last selection.
    select_tab(page, "calls")
    assert page.evaluate("location.hash") == f"#calls/call/{hash_value(call['call_id'])}"

    # A hash typed or linked selects its tab and row, filters or not.
    select_tab(page, "messages")
    panel.locator("input.filter").fill("REGISTER")
    wait_for_rows(page)
    invite = next(m for m in aaa["sip_messages"] if m["method"] == "INVITE")
    page.evaluate(f"location.hash = '#messages/frame/{invite['frame']}'")
    page.locator(f'#tab-panel tr.message-row.route-target[data-frame="{invite["frame"]}"]').wait_for()
    assert panel.locator("input.filter").input_value() == ""  # the filter hid it: cleared
    page.evaluate("location.hash = '#registrations/registration/0'")
    page.locator("#tab-panel tr.reg-row.route-target").wait_for()
    assert panel.locator("tr.reg-row").first.get_attribute("class").split().count("route-target") == 1


def test_a_phone_sorts_with_the_sort_select(booted, aaa):
    """At 390 px the rows stack and the header row is out of sight: a select sorts instead."""
    page = booted.page
    size = page.viewport_size
    page.set_viewport_size({"width": 390, "height": 844})
    try:
        open_capture(page, AAA)
        select_tab(page, "messages")
        panel = page.locator("#tab-panel")
        choice = panel.locator("table.messages").locator("xpath=..").locator("select.sort-select")
        assert choice.is_visible()
        choice.select_option("cseq:desc")
        expected = sorted(aaa["sip_messages"], key=lambda m: m["cseq"], reverse=True)
        assert shown_frames(page) == [m["frame"] for m in expected]
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
    finally:
        page.set_viewport_size(size)
    assert not panel.locator("select.sort-select").first.is_visible()  # wide again: the headers sort


def test_a_finding_about_a_call_id_that_is_no_call_opens_its_messages(booted, tmp_path):
    """An OPTIONS without Via is malformed: its Call-ID is neither a call nor a
    registration, so the finding's Call-ID opens the messages of that Call-ID."""
    from packet_builders import ethernet, ipv4, pcap, udp

    broken = (b"OPTIONS sip:probe@10.0.0.2 SIP/2.0\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@y>\r\n"
              b"Call-ID: no-via@10.0.0.1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n")
    fine = (b"OPTIONS sip:probe@10.0.0.2 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1\r\n"
            b"From: <sip:a@x>;tag=2\r\nTo: <sip:b@y>\r\nCall-ID: fine@10.0.0.1\r\nCSeq: 1 OPTIONS\r\n"
            b"Content-Length: 0\r\n\r\n")
    path = tmp_path / "options-without-via.pcap"
    path.write_bytes(pcap([(1_700_000_000 + n, 0, ethernet(ipv4(udp(m))), len(ethernet(ipv4(udp(m)))))
                           for n, m in enumerate([fine, broken, fine.replace(b"fine@", b"fine-2@")])]))
    report = cli_report(path)
    assert [f["call_id"] for f in report["findings"] if f["code"] == "SIP_MALFORMED_MESSAGE"] == ["no-via@10.0.0.1"]
    page = booted.page
    open_capture(page, path)
    page.locator('#tab-panel .finding[data-code="SIP_MALFORMED_MESSAGE"] summary').click()
    page.locator("#tab-panel .finding-call").click()
    wait_for_hash(page, f"#messages/call/{hash_value('no-via@10.0.0.1')}")
    page.locator("#tab-panel tr.message-row.route-target").wait_for()
    assert shown_frames(page) == [2]
    assert page.locator("#tab-panel input.message-call-id").input_value() == "no-via@10.0.0.1"
