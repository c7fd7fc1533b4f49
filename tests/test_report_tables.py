"""The page's tables served from the report (report_tables): typed, stable
sorting, filters, search over headers and bodies, paging to a named row, and
where evidence frames and Call-IDs are shown. Byte-built captures with known
messages, and real captures, go through the whole engine first."""

from __future__ import annotations

import pytest
from locations import SHARED_CAPTURES
from packet_builders import ethernet, ipv4, pcap, udp
from sipdiag import CaptureAnalysis, analyze_path
from sipdiag.report_tables import ReportTables


def request(method: str, cseq: int, call_id: str, extra: bytes = b"", body: bytes = b"") -> bytes:
    return (b"%s sip:bob@10.0.0.2 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK%d%s\r\n"
            b"From: <sip:alice@example.test>;tag=a%d\r\nTo: <sip:bob@example.test>\r\nCall-ID: %s\r\n"
            b"CSeq: %d %s\r\n%sContent-Length: %d\r\n\r\n%s"
            % (method.encode(), cseq, call_id.encode(), cseq, call_id.encode(), cseq, method.encode(), extra,
               len(body), body))


def response(status: int, reason: str, method: str, cseq: int, call_id: str) -> bytes:
    return (b"SIP/2.0 %d %s\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK%d%s\r\n"
            b"From: <sip:alice@example.test>;tag=a%d\r\nTo: <sip:bob@example.test>;tag=b\r\nCall-ID: %s\r\n"
            b"CSeq: %d %s\r\nContent-Length: 0\r\n\r\n"
            % (status, reason.encode(), cseq, call_id.encode(), cseq, call_id.encode(), cseq, method.encode()))


# Frame by frame: CSeq numbers whose text order differs from their numeric
# order (2, 9, 10, 100), a header and a body only one message each carries,
# responses of three classes, and two directions.
MESSAGES = [
    (request("OPTIONS", 10, "ka-1@10.0.0.1"), "10.0.0.1", "10.0.0.2"),                                    # 1
    (response(200, "OK", "OPTIONS", 10, "ka-1@10.0.0.1"), "10.0.0.2", "10.0.0.1"),                          # 2
    (request("MESSAGE", 9, "chat-7@10.0.0.1", b"Content-Type: text/plain\r\n", b"the pager text"),
     "10.0.0.1", "10.0.0.2"),                                                                                # 3
    (response(404, "Not Found", "MESSAGE", 9, "chat-7@10.0.0.1"), "10.0.0.2", "10.0.0.1"),                  # 4
    (request("OPTIONS", 100, "ka-2@10.0.0.1", b"User-Agent: probe-phone 1.0\r\n"), "10.0.0.1", "10.0.0.3"),  # 5
    (response(503, "Service Unavailable", "OPTIONS", 100, "ka-2@10.0.0.1"), "10.0.0.3", "10.0.0.1"),        # 6
    (request("OPTIONS", 2, "ka-3@10.0.0.1"), "10.0.0.1", "10.0.0.2"),                                      # 7
]


# Every test runs on the report with the text in its rows (analyze --with-text)
# and on the page's: rows without text, read back from the capture's bytes.
@pytest.fixture(scope="module", params=["text in rows", "text read back"])
def tables(request) -> ReportTables:
    packets = []
    for n, (message, src, dst) in enumerate(MESSAGES):
        frame = ethernet(ipv4(udp(message), src=src, dst=dst))
        # 1.5 s apart, then 0.25 s: deltas that are not all equal
        packets.append((1_700_000_000 + (n * 3) // 2, ((n * 3) % 2) * 500_000 + 250_000 * (n == 6), frame, len(frame)))
    data = pcap(packets)
    if request.param == "text in rows":
        analysis = CaptureAnalysis("table-probe.pcap")
        analysis.feed(data)
        return ReportTables(analysis.finish())
    analysis = CaptureAnalysis("table-probe.pcap", keep_text=False)
    analysis.feed(data)
    report = analysis.finish()
    assert all("text" not in row for row in report["sip_messages"])
    texts = analysis.texts()
    return ReportTables(report, lambda indexes: texts.texts(indexes, lambda at, size: data[at:at + size]))


def frames(page: dict) -> list[int]:
    return [entry["row"]["frame"] for entry in page["rows"]]


def test_the_capture_reads_as_built(tables):
    page = tables.rows("messages")
    assert frames(page) == [1, 2, 3, 4, 5, 6, 7] and page["total"] == 7 and page["offset"] == 0


def test_numbers_sort_as_numbers(tables):
    assert frames(tables.rows("messages", sort=[{"column": "cseq"}])) == [7, 3, 4, 1, 2, 5, 6]
    assert frames(tables.rows("messages", sort=[{"column": "cseq", "descending": True}])) == [5, 6, 1, 2, 3, 4, 7]
    assert frames(tables.rows("messages", sort=[{"column": "frame", "descending": True}])) == [7, 6, 5, 4, 3, 2, 1]


def test_sorting_is_stable_ties_keep_capture_order(tables):
    # Four messages leave 10.0.0.1, two 10.0.0.2, one 10.0.0.3.
    by_source = tables.rows("messages", sort=[{"column": "source"}])
    assert frames(by_source) == [1, 3, 5, 7, 2, 4, 6]
    # Descending keeps ties in capture order too (not reversed).
    assert frames(tables.rows("messages", sort=[{"column": "source", "descending": True}])) == [6, 2, 4, 1, 3, 5, 7]
    # Several keys: the first decides, the next breaks its ties.
    assert frames(tables.rows("messages", sort=[{"column": "source"}, {"column": "cseq"}])) == [7, 3, 1, 5, 4, 2, 6]


def test_text_sorts_without_regard_to_case(tables):
    # "200 OK" < "404 Not Found" < "503 ..." < "MESSAGE" < "OPTIONS" (case-folded)
    assert frames(tables.rows("messages", sort=[{"column": "message"}])) == [2, 4, 6, 3, 1, 5, 7]


def test_times_relative_and_delta(tables):
    derived = [entry["derived"] for entry in tables.rows("messages")["rows"]]
    assert [round(d["relative"], 6) for d in derived] == [0.0, 1.5, 3.0, 4.5, 6.0, 7.5, 9.25]
    assert [d["delta"] if d["delta"] is None else round(d["delta"], 6) for d in derived] == \
        [None, 1.5, 1.5, 1.5, 1.5, 1.5, 1.75]
    # The first message has no delta: an empty value sorts last in either direction.
    assert frames(tables.rows("messages", sort=[{"column": "delta", "descending": True}]))[-1] == 1
    assert frames(tables.rows("messages", sort=[{"column": "delta"}])) == [2, 3, 4, 5, 6, 7, 1]


def test_filters(tables):
    # A method names its requests and the responses to them.
    assert frames(tables.rows("messages", filters={"method": "OPTIONS"})) == [1, 2, 5, 6, 7]
    assert frames(tables.rows("messages", filters={"method": "OPTIONS", "status_class": "request"})) == [1, 5, 7]
    assert frames(tables.rows("messages", filters={"status_class": "5xx"})) == [6]
    assert frames(tables.rows("messages", filters={"status_class": "4xx"})) == [4]
    assert frames(tables.rows("messages", filters={"address": "10.0.0.3"})) == [5, 6]
    assert frames(tables.rows("messages", filters={"call_id": "chat-7"})) == [3, 4]
    assert frames(tables.rows("messages", filters={"frames": [2, 7]})) == [2, 7]
    # An empty filter value is no filter.
    assert frames(tables.rows("messages", filters={"method": "", "call_id": None})) == [1, 2, 3, 4, 5, 6, 7]
    with pytest.raises(ValueError, match="no filter 'colour'"):
        tables.rows("messages", filters={"colour": "red"})
    with pytest.raises(ValueError, match="no column 'colour'"):
        tables.rows("messages", sort=[{"column": "colour"}])


def test_search_reads_headers_and_bodies(tables):
    assert frames(tables.rows("messages", search="probe-phone")) == [5]  # a header only frame 5 has
    assert frames(tables.rows("messages", search="PAGER TEXT")) == [3]   # the body, any case
    assert frames(tables.rows("messages", search="service unavailable")) == [6]
    assert frames(tables.rows("messages", search="10.0.0.3:5060")) == [5, 6]
    assert frames(tables.rows("messages", search="tag=b")) == [2, 4, 6]
    assert frames(tables.rows("messages", search="no such text")) == []
    # Search, filter and sort together.
    assert frames(tables.rows("messages", search="ka-", filters={"status_class": "request"},
                              sort=[{"column": "cseq", "descending": True}])) == [5, 1, 7]


def test_pages_and_finding_a_row(tables):
    page = tables.rows("messages", offset=2, limit=3)
    assert frames(page) == [3, 4, 5] and page["total"] == 7 and page["offset"] == 2
    # The page holding frame 6 in this order, and its position in it.
    page = tables.rows("messages", sort=[{"column": "frame", "descending": True}], limit=3, find=6)
    assert (frames(page), page["offset"], page["found"]) == ([7, 6, 5], 0, 1)
    page = tables.rows("messages", limit=3, find=7)
    assert (frames(page), page["offset"], page["found"]) == ([7], 6, 6)
    # A row the query leaves out is not found; the page asked for is served.
    page = tables.rows("messages", filters={"method": "MESSAGE"}, find=7)
    assert (frames(page), page["found"]) == ([3, 4], None)


def test_the_message_rows_carry_request_uri_from_to():
    report = analyze_path(str(SHARED_CAPTURES / "sngrep__aaa.pcap"))
    first = report["sip_messages"][0]
    assert (first["request_uri"], first["from"], first["to"]) == (
        "sip:sip.cybercity.dk", "<sip:voi18063@sip.cybercity.dk>;tag=903df0a", "<sip:voi18063@sip.cybercity.dk>")


@pytest.fixture(scope="module")
def aaa() -> ReportTables:
    return ReportTables(analyze_path(str(SHARED_CAPTURES / "sngrep__aaa.pcap")))


def test_calls_carry_worst_severity_and_sort_worst_first(aaa):
    rank = {"error": 3, "warning": 2, "info": 1}
    worst = {}
    for finding in aaa.report["findings"]:
        call_id = finding.get("call_id")
        if call_id and rank[finding["severity"]] > rank.get(worst.get(call_id), 0):
            worst[call_id] = finding["severity"]
    page = aaa.rows("calls", sort=[{"column": "findings", "descending": True}])
    shown = [(entry["row"]["call_id"], entry["derived"]["worst_severity"]) for entry in page["rows"]]
    assert dict(shown) == {call["call_id"]: worst.get(call["call_id"]) for call in aaa.report["calls"]}
    ranks = [rank.get(severity, 0) for _, severity in shown]
    assert ranks == sorted(ranks, reverse=True)


def test_media_summary_per_direction():
    both = ReportTables(analyze_path(str(SHARED_CAPTURES / "heplify__rtp_rtcp_sip_ipv4_udp.pcap")))
    entry = both.rows("calls", filters={"call_id": "12013223@200.57.7.195"})["rows"][0]
    assert {name: (entry["derived"][name]["packets"], entry["derived"][name]["mos"]) for name in ("forward", "back")} \
        == {"forward": (891, 4.4), "back": (548, 4.4)}
    # Media only from the callee: nothing is summed for the caller's direction.
    one_way = ReportTables(analyze_path(str(SHARED_CAPTURES / "redrabbit__sip-rtp-g711.pcap")))
    entry = one_way.rows("calls", sort=[{"column": "media_back", "descending": True}])["rows"][0]
    assert (entry["derived"]["forward"], entry["derived"]["back"]["packets"]) == (None, 425)


def test_dns_problem_filter_and_sort(aaa):
    rows = aaa.report["dns"]
    problems = aaa.rows("dns", filters={"problems": True})
    assert [e["row"]["frame"] for e in problems["rows"]] == \
        [r["frame"] for r in rows if r["rcode"] != "NOERROR" or r["answers"] == 0]
    slowest = aaa.rows("dns", sort=[{"column": "response_ms", "descending": True}], limit=1)["rows"][0]["row"]
    assert slowest["response_ms"] == max(r["response_ms"] for r in rows if r["response_ms"] is not None)


def test_evidence_frames_and_call_ids_are_located(aaa):
    report = aaa.report
    message = report["sip_messages"][3]["frame"]
    assert aaa.locate_frame(message) == {"tab": "messages", "kind": "frame", "value": message}
    query = next(r for r in report["dns"] if r["response_frame"])
    assert aaa.locate_frame(query["response_frame"]) == {"tab": "dns", "kind": "frame", "value": query["response_frame"]}
    assert aaa.locate_frame(10**9) is None
    registration = report["registrations"][1]
    assert aaa.locate_call(registration["call_id"]) == {"tab": "registrations", "kind": "registration", "value": 1}
    call = report["calls"][0]
    assert aaa.locate_call(call["call_id"]) == {"tab": "calls", "kind": "call", "value": call["call_id"]}
    assert aaa.locate_call("not-a-call") is None


def test_rtp_and_network_evidence_is_located():
    rtp = ReportTables(analyze_path(str(SHARED_CAPTURES / "redrabbit__sip-rtp-g711.pcap")))
    stream = rtp.report["calls"][0]["media"][0]
    middle = (stream["first_frame"] + stream["last_frame"]) // 2
    assert rtp.locate_frame(stream["first_frame"]) == {"tab": "rtp", "kind": "frame", "value": stream["first_frame"]}
    assert rtp.rtp_call(middle) == {"call_id": rtp.report["calls"][0]["call_id"], "stream": 0}
    tls = ReportTables(analyze_path(str(SHARED_CAPTURES / "sngrep__tlssaved.pcap")))
    assert [tls.locate_frame(f) for f in (1, 9)] == [{"tab": "messages", "kind": "packet", "value": f} for f in (1, 9)]
    assert [e["row"]["text"] for e in tls.rows("network")["rows"]] == ["TLS connection, 8 packets",
                                                                       "TLS connection, 4 packets"]
