"""The one ladder layout (py/sipdiag/ladder.py) on real captures: columns per
host or per IP:port, the legs of one call in one diagram, frame numbers and
delta times on every arrow, SDP summaries, RTP counts per direction, ellipses."""

from __future__ import annotations

from xml.etree import ElementTree

import pytest
from packet_builders import INVITE, OK_200, ethernet, ipv4, pcap, udp
from sipdiag import engine, ladder

SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def pbx_report(fixtures_dir):
    # A PBX (10.77.0.2) joins two legs: it talks to the caller from port 5060 and
    # to the callee from port 5062, then re-INVITEs both legs for direct media.
    return engine.analyze_path(str(fixtures_dir / "media" / "media_pbx_direct.pcap"))


@pytest.fixture(scope="module")
def aaa_report(shared_captures):
    return engine.analyze_path(str(shared_captures / "sngrep__aaa.pcap"))


def all_call_ids(report):
    return [call["call_id"] for call in report["calls"]]


def parse(svg: str) -> ElementTree.Element:
    return ElementTree.fromstring(svg)


def with_class(root, name):
    return [node for node in root.iter() if name in (node.get("class") or "").split()]


def text_of(node) -> str:
    return "".join(node.itertext())


def test_a_host_with_two_sip_ports_is_one_column(pbx_report):
    legs = all_call_ids(pbx_report)
    assert pbx_report["call_groups"][0]["calls"] == legs  # the two dialogs are one call
    drawn = ladder.layout(pbx_report, legs)
    assert [c.key for c in drawn.columns] == ["10.77.0.1", "10.77.0.2", "10.77.0.3"]
    pbx = drawn.columns[1]
    assert pbx.sip_ports == [5060, 5062] and pbx.name == "sipdiag-fixture-pbx"
    root = parse(ladder.render(drawn))
    assert [text_of(n) for n in with_class(root, "ladder-host")] == ["10.77.0.1", "10.77.0.2", "10.77.0.3"]
    assert [text_of(n) for n in with_class(root, "ladder-host-ports")] == ["SIP ports 5060, 5062"]


def test_an_sbc_that_sends_from_another_port_than_it_listens_on_is_one_column(fixtures_dir):
    # Byte-built (tests/fixtures/ladder/generate.py): the SBC 10.77.0.9 takes the
    # INVITE on 5060 and sends its BYE from 5080; media on 10.77.0.9:30000.
    report = engine.analyze_path(str(fixtures_dir / "ladder" / "ladder_sbc_two_ports.pcap"))
    call_ids = all_call_ids(report)
    assert len(call_ids) == 1 and report["calls"][0]["outcome"] == "answered"
    per_host = ladder.layout(report, call_ids)
    assert [(c.key, c.sip_ports) for c in per_host.columns] == [("10.77.0.1", [5060]), ("10.77.0.9", [5060, 5080])]
    arrows = [row for row in per_host.rows if isinstance(row, ladder.Arrow)]
    assert {(a.message["method"] or a.message["status"], a.source, a.target) for a in arrows[-2:]} == {
        ("BYE", 1, 0), (200, 0, 1)}  # the BYE from 5080 and its 200 run between the same two columns
    per_port = ladder.layout(report, call_ids, per_port=True)
    assert [c.key for c in per_port.columns] == [
        "10.77.0.1:5060", "10.77.0.9:5060", "10.77.0.9:5080", "10.77.0.1:4000", "10.77.0.9:30000"]


def test_a_host_talking_to_itself_gets_loops_and_its_own_band(shared_captures):
    # eyeBeam on 127.0.0.1:13764 registered with a server on 127.0.0.1:5060, and
    # RTP between two ports of 192.168.6.199: per host, each is one column.
    report = engine.analyze_path(str(shared_captures / "redrabbit__h263-over-rtp.pcap"))
    drawn = ladder.layout(report, all_call_ids(report))
    assert [(c.key, c.sip_ports) for c in drawn.columns] == [("127.0.0.1", [13764, 5060]), ("192.168.6.199", [])]
    root = parse(ladder.render(drawn))
    arrows = with_class(root, "ladder-arrow")
    assert len(arrows) == 4 and all(a.find(f"{SVG}path").get("fill") == "none" for a in arrows)  # loops, not lines
    band = with_class(root, "ladder-rtp")[0]
    rect, text = band.find(f"{SVG}rect"), with_class(band, "ladder-band-text")[0]
    assert float(rect.get("width")) == pytest.approx(drawn.column_width - 16, abs=0.01)
    assert text_of(text) == "RTP H263 → 45 pkts · ← none"


def test_per_port_columns_split_the_host_by_port(pbx_report):
    legs = all_call_ids(pbx_report)
    drawn = ladder.layout(pbx_report, legs, per_port=True)
    # SIP endpoints in order of appearance, then the RTP endpoints no SIP message used.
    assert [c.key for c in drawn.columns] == [
        "10.77.0.1:5060", "10.77.0.2:5060", "10.77.0.2:5062", "10.77.0.3:5060",
        "10.77.0.3:20000", "10.77.0.2:30010", "10.77.0.1:16384", "10.77.0.2:30000"]
    assert all(c.sip_ports == [] for c in drawn.columns)


def test_every_message_of_the_legs_is_an_arrow_with_its_frame_and_delta(pbx_report):
    legs = all_call_ids(pbx_report)
    root = parse(ladder.ladder_svg(pbx_report, legs))
    arrows = with_class(root, "ladder-arrow")
    messages = sorted(pbx_report["sip_messages"], key=lambda m: m["time"])
    assert [int(a.get("data-frame")) for a in arrows] == [m["frame"] for m in messages]
    for arrow, message, previous in zip(arrows, messages, [None, *messages]):
        assert text_of(with_class(arrow, "ladder-frame")[0]) == f"#{message['frame']}"
        delta = 0.0 if previous is None else message["time"] - previous["time"]
        assert text_of(with_class(arrow, "ladder-delta")[0]) == ladder.delta_text(delta)
    # frame 337 (BYE) comes 3.5 s after frame 37 (the last ACK): seconds, not ms
    bye = next(a for a in arrows if a.get("data-frame") == "337")
    assert text_of(with_class(bye, "ladder-delta")[0]) == "+3.503 s"


def test_offers_and_answers_carry_their_sdp_summary(pbx_report):
    root = parse(ladder.ladder_svg(pbx_report, all_call_ids(pbx_report)))
    sdp = {a.get("data-frame"): text_of(with_class(a, "ladder-sdp")[0])
           for a in with_class(root, "ladder-arrow") if with_class(a, "ladder-sdp")}
    with_sdp = {str(m["frame"]) for m in pbx_report["sip_messages"] if m["has_sdp"]}
    assert set(sdp) == with_sdp
    # frame 7: the callee's 200 OK (m=audio 20000 RTP/AVP 8 101, c=IN IP4 10.77.0.3, a=sendrecv);
    # frame 31: the PBX re-INVITEs the caller towards the callee's media.
    assert sdp["7"] == "PCMA 10.77.0.3:20000 sendrecv"
    assert sdp["31"] == "PCMA 10.77.0.3:20000 sendrecv"
    assert sdp["1"] == "PCMA 10.77.0.1:16384 sendrecv"


def test_rtp_bands_count_packets_each_way(pbx_report):
    root = parse(ladder.ladder_svg(pbx_report, all_call_ids(pbx_report)))
    bands = [text_of(n.find(f"{SVG}text")) for n in with_class(root, "ladder-rtp")]
    # The direct media (caller 10.77.0.1:16384 <-> callee 10.77.0.3:20000) is one
    # stream each way, shared by both legs and counted once; before the
    # re-INVITEs each endpoint sent 10 packets to the PBX and got none back.
    direct = next(m for m in pbx_report["calls"][0]["media"] if m["dst"] == "10.77.0.3:20000")
    assert bands == ["RTP PCMA → none · ← 10 pkts", "RTP PCMA → 10 pkts · ← none",
                     f"RTP PCMA → {direct['packets']} pkts · ← 150 pkts"]


def test_retransmissions_are_dashed_and_collapse(aaa_report):
    call = aaa_report["calls"][0]  # INVITE retransmitted, CANCELs retransmitted, then 408
    root = parse(ladder.ladder_svg(aaa_report, [call["call_id"]]))
    dashed = with_class(root, "ladder-retransmission")
    assert sorted(int(a.get("data-frame")) for a in dashed) == call["retransmission_frames"]
    assert all(a.find(f"{SVG}line").get("stroke-dasharray") == "5 4" for a in dashed)
    collapsed = parse(ladder.ladder_svg(aaa_report, [call["call_id"]], collapse_retransmissions=True))
    kept = [int(a.get("data-frame")) for a in with_class(collapsed, "ladder-arrow")]
    assert kept == [f for f in call["frames"] if f not in call["retransmission_frames"]]


def test_columns_widen_for_their_text(aaa_report):
    call = aaa_report["calls"][0]
    drawn = ladder.layout(aaa_report, [call["call_id"]])
    # "Sip EXpress router (0.8.12 (i386/linux))" and the 100's reason phrase
    # "trying -- your call is important to us" need more than the narrowest column
    reason = next(m for m in aaa_report["sip_messages"] if m["frame"] == 228)
    assert reason["reason"] == "trying -- your call is important to us"
    needed = len(f"100 {reason['reason']} ⟳") * ladder.LABEL_SIZE * ladder.GLYPH_EM + 16
    assert ladder.COLUMN_WIDTH < needed <= drawn.column_width < ladder.MAX_COLUMN_WIDTH
    root = parse(ladder.render(drawn))
    labels = [text_of(a.find(f"{SVG}text")) for a in with_class(root, "ladder-arrow")]
    assert "100 trying -- your call is important to us" in labels  # whole, no ellipsis


def test_long_text_ends_in_an_ellipsis_and_the_title_has_it_whole(fixtures_dir):
    report = engine.analyze_path(str(fixtures_dir / "calls" / "call_fragmented_invite.pcap"))
    phone = "sipdiag-fixture-caller (feature-rich desk phone firmware 4.2.17-build-20240118-long-version-string)"
    assert report["calls"][0]["hosts"][0]["name"] == phone  # its User-Agent
    drawn = ladder.layout(report, all_call_ids(report))
    assert drawn.column_width == ladder.MAX_COLUMN_WIDTH
    root = parse(ladder.render(drawn))
    room = int((ladder.MAX_COLUMN_WIDTH - 12) / (ladder.LABEL_SIZE * ladder.GLYPH_EM))
    shown = text_of(with_class(root, "ladder-host-name")[0])
    assert shown == phone[: room - 1] + "…"
    assert len(shown) * ladder.LABEL_SIZE * ladder.GLYPH_EM <= ladder.MAX_COLUMN_WIDTH - 12
    assert phone in with_class(root, "ladder-column")[0].find(f"{SVG}title").text
    assert ladder.fit("INVITE", 200, 12) == "INVITE"


def test_an_offer_with_many_codecs_counts_the_rest(aaa_report):
    invite = next(m for m in aaa_report["sip_messages"] if m["frame"] == 223)
    assert "m=audio 30000 RTP/AVP 0 8 97 2 3\r\n" in invite["text"]
    assert ladder.sdp_summary(invite) == "pcmu/pcma +3 192.168.1.2:30000 sendrecv"
    root = parse(ladder.ladder_svg(aaa_report, [aaa_report["calls"][0]["call_id"]]))
    arrow = next(a for a in with_class(root, "ladder-arrow") if a.get("data-frame") == "223")
    assert "SDP: pcmu/pcma/iLBC/G726-32/GSM 192.168.1.2:30000 sendrecv" in arrow.find(f"{SVG}title").text


def test_all_sip_in_one_flow_graph_and_the_row_limit(aaa_report):
    root = parse(ladder.ladder_svg(aaa_report))
    frames = [int(a.get("data-frame")) for a in with_class(root, "ladder-arrow")]
    assert sorted(frames) == [m["frame"] for m in aaa_report["sip_messages"]]  # REGISTERs too
    bands = len(with_class(root, "ladder-rtp"))
    assert bands == len({frozenset((m["src"], m["dst"])) for c in aaa_report["calls"] for m in c["media"]})
    limited = parse(ladder.ladder_svg(aaa_report, max_rows=10))
    assert len(with_class(limited, "ladder-arrow")) == 10
    assert text_of(with_class(limited, "ladder-left-out")[0]) == \
        f"{len(aaa_report['sip_messages']) + bands - 10} more rows not drawn (the first 10 are shown)"


def test_inline_markup_for_html_has_no_namespace_name(pbx_report):
    legs = all_call_ids(pbx_report)
    assert ladder.ladder_svg(pbx_report, legs).startswith('<svg xmlns="http://www.w3.org/2000/svg"')
    inline = ladder.ladder_svg(pbx_report, legs, inline=True)
    assert "http" not in inline
    # in a static document an arrow is no control: not focusable, no button
    root = ElementTree.fromstring(inline)
    arrows = with_class(root, "ladder-arrow")
    assert arrows and all(a.get("tabindex") is None and a.get("role") == "group" for a in arrows)


def test_control_characters_in_the_capture_still_give_well_formed_svg(tmp_path):
    # A User-Agent and a reason phrase with bytes XML 1.0 cannot hold, even escaped.
    invite = INVITE.replace(b"CSeq: 7 INVITE\r\n", b"CSeq: 7 INVITE\r\nUser-Agent: phone\x01\x0bfirmware\r\n")
    answer = OK_200.replace(b"SIP/2.0 200 OK", b"SIP/2.0 200 O\x02K")
    path = tmp_path / "control.pcap"
    path.write_bytes(pcap([(1, 0, data, len(data)) for data in (
        ethernet(ipv4(udp(invite))), ethernet(ipv4(udp(answer), src="10.0.0.2", dst="10.0.0.1")))]))
    report = engine.analyze_path(str(path))
    assert report["calls"][0]["hosts"][0]["name"] == "phone\x01\x0bfirmware"
    root = parse(ladder.ladder_svg(report, all_call_ids(report)))  # parses: well-formed XML
    assert text_of(with_class(root, "ladder-host-name")[0]) == "phone\ufffd\ufffdfirmware"
    assert text_of(with_class(root, "ladder-label")[1]) == "200 O\ufffdK"
