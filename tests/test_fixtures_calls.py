"""The call and redaction fixtures really contain what their names say.

tshark is the independent reader here (not our engine): each test names the
SIP message sequence, the RTP streams and the detail its fixture exists for.
Regenerate the fixtures with tests/fixtures/calls/generate.py and
tests/fixtures/redaction/generate.py (see tests/fixtures/README.md).
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ANSWERED = ["INVITE", "100 INVITE", "180 INVITE", "200 INVITE", "ACK", "BYE", "200 BYE"]
CALLER, CALLEE = "10.77.0.1", "10.77.0.2"
PHONE_CALLER, PHONE_CALLEE = "+14155550123", "+14155550199"


@dataclass(frozen=True)
class SipRow:
    frame: int
    interface: str
    src: str
    dst: str
    message: str     # "INVITE" for a request, "486 INVITE" for a response
    transport: str   # "udp" | "tcp"


@dataclass(frozen=True)
class RtpStream:
    src: str         # "ip:port"
    dst: str
    ssrc: str
    payload: str
    packets: int
    lost: int
    mean_jitter_ms: float = field(default=0.0, compare=False)


def tshark(capture: Path, *args: str) -> str:
    return subprocess.run(["tshark", "-n", "-r", str(capture), *args],
                          capture_output=True, text=True, check=True).stdout


def fields(capture: Path, display_filter: str, *names: str) -> list[list[str]]:
    out = tshark(capture, "-Y", display_filter, "-T", "fields", "-E", "separator=\t",
                 *[arg for name in names for arg in ("-e", name)])
    return [line.split("\t") for line in out.splitlines()]


def sip_rows(capture: Path) -> list[SipRow]:
    rows = []
    for frame, interface, ip4src, ip6src, ip4dst, ip6dst, tcp, method, status, cseq in fields(
            capture, "sip", "frame.number", "frame.interface_name", "ip.src", "ipv6.src",
            "ip.dst", "ipv6.dst", "tcp.stream", "sip.Method", "sip.Status-Code", "sip.CSeq.method"):
        message = method if method else f"{status} {cseq}"
        rows.append(SipRow(int(frame), interface, ip4src or ip6src, ip4dst or ip6dst, message,
                           "tcp" if tcp else "udp"))
    return rows


def messages(rows: list[SipRow]) -> list[str]:
    return [row.message for row in rows]


def rtp_streams(capture: Path) -> list[RtpStream]:
    """tshark's RTP stream table (the same statistics issue 5 compares jitter
    and loss with), streams found from the SDP of the same capture."""
    out = tshark(capture, "-q", "-z", "rtp,streams")
    streams = []
    for line in out.splitlines():
        cols = line.split()
        if len(cols) > 10 and re.fullmatch(r"0x[0-9A-F]+", cols[6]):
            streams.append(RtpStream(_hostport(cols[2], cols[3]), _hostport(cols[4], cols[5]),
                                     cols[6], cols[7], int(cols[8]), int(cols[9]), float(cols[15])))
    return sorted(streams, key=lambda s: s.src)


def _hostport(ip: str, port: str) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def pcma(src: str, dst: str, ssrc: str, packets: int) -> RtpStream:
    return RtpStream(src, dst, ssrc, "g711A", packets, 0)


CALLER_SSRC, CALLEE_SSRC = "0x11A11CE0", "0x22B0B000"


def two_way_pcma(caller: str, callee: str, packets: int) -> list[RtpStream]:
    """The RTP of an answered call: caller media port 16384, callee 20000."""
    return sorted([pcma(_hostport(caller, "16384"), _hostport(callee, "20000"), CALLER_SSRC, packets),
                   pcma(_hostport(callee, "20000"), _hostport(caller, "16384"), CALLEE_SSRC, packets)],
                  key=lambda s: s.src)


@pytest.fixture(scope="module")
def calls(fixtures_dir: Path) -> Path:
    return fixtures_dir / "calls"


@pytest.fixture(scope="module")
def redaction(fixtures_dir: Path) -> Path:
    return fixtures_dir / "redaction"


def sdp_media(capture: Path, display_filter: str) -> list[str]:
    return [row[0] for row in fields(capture, display_filter, "sdp.media")]


# -- call flows ---------------------------------------------------------------

def test_call_answered_rtp_is_a_full_call_with_rtp_both_ways(calls):
    capture = calls / "call_answered_rtp.pcap"
    rows = sip_rows(capture)
    assert messages(rows) == ANSWERED
    assert {(row.src, row.dst) for row in rows if row.message in ("INVITE", "ACK", "BYE")} == {(CALLER, CALLEE)}
    assert sdp_media(capture, "sip.Method == INVITE") == ["audio 16384 RTP/AVP 8 0 101"]
    assert sdp_media(capture, "sip.Status-Code == 200 && sdp") == ["audio 20000 RTP/AVP 8 101"]
    assert rtp_streams(capture) == two_way_pcma(CALLER, CALLEE, 150)


def test_call_rtp_loss_jitter_has_gaps_and_jitter_in_the_callee_stream(calls):
    capture = calls / "call_rtp_loss_jitter.pcap"
    assert messages(sip_rows(capture)) == ANSWERED
    from_caller, from_callee = rtp_streams(capture)
    assert from_caller == pcma(f"{CALLER}:16384", f"{CALLEE}:20000", CALLER_SSRC, 150)
    # 6 of 150 sequence numbers never sent (tshark: "Lost 6 (4.0%)").
    assert from_callee == RtpStream(f"{CALLEE}:20000", f"{CALLER}:16384", CALLEE_SSRC, "g711A", 144, 6)
    # +-6 ms of send-time jitter; an undisturbed stream here stays below 0.2 ms.
    assert 2.0 < from_callee.mean_jitter_ms < 5.0
    assert from_caller.mean_jitter_ms < 1.0


@pytest.mark.parametrize("status, reason", [(486, "Busy Here"), (480, "Temporarily Unavailable"),
                                            (404, "Not Found")])
def test_rejected_call_is_answered_with_its_status_and_acked(calls, status, reason):
    capture = calls / f"call_{status}.pcap"
    assert messages(sip_rows(capture)) == ["INVITE", "100 INVITE", f"{status} INVITE", "ACK"]
    assert fields(capture, f"sip.Status-Code == {status}", "sip.Status-Line") == [[f"SIP/2.0 {status} {reason}"]]
    assert sdp_media(capture, "sip.Method == INVITE") == ["audio 16384 RTP/AVP 0"]
    assert rtp_streams(capture) == []


def test_call_488_offers_only_pcmu_and_the_callee_only_g729(calls):
    capture = calls / "call_488_codec_mismatch.pcap"
    assert messages(sip_rows(capture)) == ["INVITE", "100 INVITE", "488 INVITE", "ACK"]
    assert fields(capture, "sip.Method == INVITE", "sdp.media", "sdp.media_attr") == [
        ["audio 16384 RTP/AVP 0", "rtpmap:0 PCMU/8000,ptime:20,sendrecv"]]
    [[warning, media]] = fields(capture, "sip.Status-Code == 488", "sip.Warning", "sdp.media")
    assert warning == f'305 {CALLEE} "Incompatible media format: only G729 supported"'
    assert media == "audio 0 RTP/AVP 18"


def test_call_cancel_487_is_cancelled_while_ringing(calls):
    capture = calls / "call_cancel_487.pcap"
    assert messages(sip_rows(capture)) == ["INVITE", "100 INVITE", "180 INVITE", "CANCEL",
                                           "200 CANCEL", "487 INVITE", "ACK"]
    # CANCEL and ACK belong to the INVITE transaction: one branch for all.
    assert len({row[0] for row in fields(capture, "sip", "sip.Via.branch")}) == 1


def test_call_408_comes_from_the_proxy_after_unanswered_invites(calls):
    capture = calls / "call_408_proxy.pcap"
    caller, proxy, callee = "10.77.0.1", "10.77.0.2", "10.77.0.3"
    rows = sip_rows(capture)
    assert [(r.src, r.dst, r.message) for r in rows if caller in (r.src, r.dst)] == [
        (caller, proxy, "INVITE"), (proxy, caller, "100 INVITE"),
        (proxy, caller, "408 INVITE"), (caller, proxy, "ACK")]
    # The proxy retransmits the INVITE (timer A) and the callee never says a word.
    assert [(r.src, r.dst, r.message) for r in rows if caller not in (r.src, r.dst)] == [
        (proxy, callee, "INVITE")] * 3
    assert fields(capture, "sip.Status-Code == 408", "sip.Server") == [["kamailio (sipdiag lab proxy)"]]


def test_call_one_way_rtp_private_sdp_comes_through_a_nat(calls):
    capture = calls / "call_one_way_rtp_private_sdp.pcap"
    nat, callee, private = "203.0.113.1", "203.0.113.20", "192.168.1.10"
    rows = sip_rows(capture)
    assert messages(rows) == ANSWERED
    assert {(row.src, row.dst) for row in rows if row.message in ("INVITE", "ACK", "BYE")} == {(nat, callee)}
    [[via, contact, connection]] = fields(capture, "sip.Method == INVITE", "sip.Via.sent-by.address",
                                         "sip.contact.host", "sdp.connection_info.address")
    assert (via, contact, connection) == (private, private, private)
    # Only the callee talks, to the private address it was given.
    assert rtp_streams(capture) == [pcma(f"{callee}:20000", f"{private}:16384", CALLEE_SSRC, 150)]
    assert fields(capture, f"ip.src == {private} || udp.dstport == 20000", "frame.number") == []


def test_call_tcp_compact_uses_compact_headers_on_one_connection(calls):
    capture = calls / "call_tcp_compact.pcap"
    rows = sip_rows(capture)
    assert messages(rows) == ANSWERED
    assert {row.transport for row in rows} == {"tcp"}
    assert {row[0] for row in fields(capture, "sip", "tcp.stream")} == {"0"}
    for [header] in fields(capture, "sip", "sip.msg_hdr"):
        names = {line.split(":", 1)[0] for line in header.split("\\r\\n") if ":" in line}
        assert {"v", "f", "t", "i", "l"} <= names
        assert not names & {"Via", "From", "To", "Call-ID", "Contact", "Content-Length", "Content-Type"}
    assert rtp_streams(capture) == two_way_pcma(CALLER, CALLEE, 150)


def test_call_fragmented_invite_arrives_in_ip_fragments(calls):
    capture = calls / "call_fragmented_invite.pcap"
    assert messages(sip_rows(capture)) == ANSWERED
    [[frame, count, size]] = fields(capture, "sip.Method == INVITE", "frame.number",
                                    "ip.fragment.count", "ip.reassembled.length")
    assert (frame, count) == ("3", "3") and int(size) > 1400
    assert [row[0] for row in fields(capture, "ip.flags.mf == 1", "frame.number")] == ["1", "2", "6"]
    assert len(sdp_media(capture, "sip.Method == INVITE")[0].split()) == 3 + 12  # 12 payload types
    assert rtp_streams(capture) == two_way_pcma(CALLER, CALLEE, 150)


def test_call_no_ack_retransmits_the_200_and_ends_with_bye(calls):
    capture = calls / "call_no_ack.pcap"
    assert messages(sip_rows(capture)) == ["INVITE", "100 INVITE", "180 INVITE"] + ["200 INVITE"] * 4 + [
        "BYE", "200 BYE"]
    # Retransmissions are the same message, byte for byte.
    assert len({row[0] for row in fields(capture, "sip.Status-Code == 200 && sip.CSeq.method == INVITE",
                                         "udp.payload")}) == 1
    assert fields(capture, "sip.Method == BYE", "ip.src", "sip.Reason") == [
        [CALLEE, 'SIP;cause=408;text="ACK Timeout"']]
    assert rtp_streams(capture) == []


def test_call_ipv6_is_an_answered_call_over_ipv6(calls):
    capture = calls / "call_ipv6.pcap"
    rows = sip_rows(capture)
    assert messages(rows) == ANSWERED
    assert {(row.src, row.dst) for row in rows if row.message == "INVITE"} == {("fd77::1", "fd77::2")}
    assert fields(capture, "sip.Method == INVITE", "sdp.connection_info") == [["IN IP6 fd77::1"]]
    assert rtp_streams(capture) == two_way_pcma("fd77::1", "fd77::2", 150)


# -- redaction ----------------------------------------------------------------

def test_redact_tcp_length_change_has_short_addresses_in_one_tcp_stream(redaction):
    capture = redaction / "redact_tcp_length_change.pcap"
    rows = sip_rows(capture)
    assert messages(rows) == ANSWERED
    assert {(row.src, row.dst) for row in rows} == {("10.0.0.1", "10.0.0.2"), ("10.0.0.2", "10.0.0.1")}
    assert {row[0] for row in fields(capture, "sip", "tcp.stream")} == {"0"}
    [[call_id, from_user, display]] = fields(capture, "sip.Method == INVITE", "sip.Call-ID",
                                             "sip.from.user", "sip.from.display.info")
    assert (call_id, from_user, display) == ("1-redact@jane-laptop.corp.example.com",
                                             PHONE_CALLER, '"Jane Q. Doe"')
    assert rtp_streams(capture) == two_way_pcma("10.0.0.1", "10.0.0.2", 50)


def test_redact_two_interfaces_is_a_pcapng_with_one_leg_per_interface(redaction):
    capture = redaction / "redact_two_interfaces.pcapng"
    assert capture.read_bytes()[:4] == b"\x0a\x0d\x0d\x0a"
    caller, proxy, callee = "10.77.0.1", "10.77.0.2", "10.77.0.3"
    rows = sip_rows(capture)
    assert {(row.interface, row.src, row.dst) for row in rows} == {
        ("p1", caller, proxy), ("p1", proxy, caller), ("p3", proxy, callee), ("p3", callee, proxy)}
    for interface in ("p1", "p3"):
        assert messages([row for row in rows if row.interface == interface]) == ANSWERED
        # The direct RTP crosses both ports: 50 packets each way on each.
        assert len(fields(capture, f'rtp && frame.interface_name == "{interface}"', "frame.number")) == 100


def test_redact_ipv6_is_an_answered_call_between_global_ipv6_addresses(redaction):
    capture = redaction / "redact_ipv6.pcap"
    caller, callee = "2001:db8:5ec::a1", "2001:db8:5ec::b2"
    rows = sip_rows(capture)
    assert messages(rows) == ANSWERED
    assert {(row.src, row.dst) for row in rows if row.message == "INVITE"} == {(caller, callee)}
    assert fields(capture, "sip.Method == INVITE", "sip.r-uri.user", "sdp.owner.address") == [
        [PHONE_CALLEE, caller]]
    assert rtp_streams(capture) == two_way_pcma(caller, callee, 50)


# -- media (tests/fixtures/media) -------------------------------------------------

@pytest.fixture(scope="module")
def media(fixtures_dir: Path) -> Path:
    return fixtures_dir / "media"


def ends(stream: RtpStream) -> tuple[str, str]:
    return stream.src, stream.dst


def test_media_pbx_direct_is_two_dialogs_joined_by_a_pbx_that_hands_over_the_media(media):
    capture = media / "media_pbx_direct.pcap"
    alice, pbx, bob = "10.77.0.1", "10.77.0.2", "10.77.0.3"
    rows = sip_rows(capture)
    leg1 = [(r.frame, r.src, r.message) for r in rows if alice in (r.src, r.dst)]
    leg2 = [(r.frame, r.src, r.message) for r in rows if bob in (r.src, r.dst)]
    assert leg1 == [(1, alice, "INVITE"), (2, pbx, "100 INVITE"), (5, pbx, "180 INVITE"), (10, pbx, "200 INVITE"),
                    (11, alice, "ACK"), (31, pbx, "INVITE"), (32, alice, "200 INVITE"), (33, pbx, "ACK"),
                    (337, alice, "BYE"), (338, pbx, "200 BYE")]
    assert leg2 == [(3, pbx, "INVITE"), (4, bob, "100 INVITE"), (6, bob, "180 INVITE"), (7, bob, "200 INVITE"),
                    (8, pbx, "ACK"), (35, pbx, "INVITE"), (36, bob, "200 INVITE"), (37, pbx, "ACK"),
                    (339, pbx, "BYE"), (340, bob, "200 BYE")]
    call_ids = {row[0] for row in fields(capture, "sip", "sip.Call-ID")}
    assert call_ids == {"media_pbx_direct-1@10.77.0.1", "7c1e5a90d3b24f68@10.77.0.2"}
    # Both INVITEs carry alice's Session-ID UUID; leg 2's and the PBX's 200 to alice the icid.
    assert fields(capture, "sip.Method == INVITE && sip.CSeq.seq == 1", "sip.Session-ID") == [
        ["ab30317f1a784dc48ff824d0d3715d86;remote=00000000000000000000000000000000"]] * 2
    assert {row[0] for row in fields(capture, "sip.P-Charging-Vector", "sip.P-Charging-Vector")} == {
        "icid-value=pbx-4f2a9c1d-0001;icid-generated-at=10.77.0.2"}
    # The SDP of each frame: the PBX answers with its own ports, then its
    # re-INVITEs give each phone the other's address.
    assert fields(capture, "sdp", "frame.number", "sdp.connection_info.address", "sdp.media.port") == [
        ["1", alice, "16384"], ["3", pbx, "30010"], ["7", bob, "20000"], ["10", pbx, "30000"],
        ["31", bob, "20000"], ["32", alice, "16384"], ["35", alice, "16384"], ["36", bob, "20000"]]
    assert sorted(rtp_streams(capture), key=ends) == sorted([
        pcma(f"{alice}:16384", f"{pbx}:30000", CALLER_SSRC, 10), pcma(f"{bob}:20000", f"{pbx}:30010", CALLEE_SSRC, 10),
        pcma(f"{alice}:16384", f"{bob}:20000", CALLER_SSRC, 150), pcma(f"{bob}:20000", f"{alice}:16384", CALLEE_SSRC, 150),
    ], key=ends)
    # Each phone sends to the other once its re-INVITE is ACKed (frames 33, 37).
    [[alice_to_bob]] = fields(capture, f"ip.src == {alice} && ip.dst == {bob}", "frame.number")[:1]
    [[bob_to_alice]] = fields(capture, f"ip.src == {bob} && ip.dst == {alice}", "frame.number")[:1]
    assert 33 < int(alice_to_bob) and 37 < int(bob_to_alice)


def test_media_hold_resume_holds_with_sendonly_and_resumes_on_a_new_port(media):
    capture = media / "media_hold_resume.pcap"
    caller, callee = "10.77.0.1", "10.77.0.2"
    assert messages(sip_rows(capture)) == ["INVITE", "100 INVITE", "180 INVITE", "200 INVITE", "ACK",
                                           "INVITE", "200 INVITE", "ACK", "INVITE", "200 INVITE", "ACK",
                                           "BYE", "200 BYE"]
    assert fields(capture, "sdp", "frame.number", "sdp.media.port", "sdp.media_attr") == [
        ["1", "16384", "rtpmap:8 PCMA/8000,rtpmap:101 telephone-event/8000,fmtp:101 0-15,ptime:20,sendrecv"],
        ["4", "20000", "rtpmap:8 PCMA/8000,rtpmap:101 telephone-event/8000,fmtp:101 0-15,ptime:20,sendrecv"],
        ["106", "16384", "rtpmap:8 PCMA/8000,rtpmap:101 telephone-event/8000,fmtp:101 0-15,ptime:20,sendonly"],
        ["107", "20000", "rtpmap:8 PCMA/8000,rtpmap:101 telephone-event/8000,fmtp:101 0-15,ptime:20,recvonly"],
        ["209", "16386", "rtpmap:8 PCMA/8000,rtpmap:101 telephone-event/8000,fmtp:101 0-15,ptime:20,sendrecv"],
        ["210", "20000", "rtpmap:8 PCMA/8000,rtpmap:101 telephone-event/8000,fmtp:101 0-15,ptime:20,sendrecv"]]
    # The caller talks, plays music on hold (one stream from 16384), then talks from 16386;
    # the callee is silent on hold and answers the resume on the new port.
    assert sorted(rtp_streams(capture), key=ends) == sorted([
        pcma(f"{caller}:16384", f"{callee}:20000", CALLER_SSRC, 150),
        pcma(f"{caller}:16386", f"{callee}:20000", CALLER_SSRC, 75),
        pcma(f"{callee}:20000", f"{caller}:16384", CALLEE_SSRC, 50),
        pcma(f"{callee}:20000", f"{caller}:16386", CALLEE_SSRC, 75)], key=ends)
    callee_rtp = [float(t) for [t] in fields(capture, f"rtp && ip.src == {callee}", "frame.time_epoch")]
    hold, resume = (float(t) for [t] in fields(capture, "sip.Method == INVITE && sip.CSeq.seq > 1",
                                               "frame.time_epoch"))
    assert not [t for t in callee_rtp if hold < t < resume]
    assert fields(capture, "icmp", "frame.number") == []


def test_media_tcp_no_via_answers_over_tcp_without_any_via(media):
    capture = media / "media_tcp_no_via.pcap"
    rows = sip_rows(capture)
    assert messages(rows) == ANSWERED
    assert {row.transport for row in rows} == {"tcp"}
    assert [(r.frame, r.message) for r in rows if " " in r.message] == [
        (6, "100 INVITE"), (8, "180 INVITE"), (10, "200 INVITE"), (316, "200 BYE")]
    # Requests carry their Via; no response does.
    assert [row[0] for row in fields(capture, "sip.Status-Code", "sip.Via")] == [""] * 4
    assert all(via for [via] in fields(capture, "sip.Method", "sip.Via"))
    assert rtp_streams(capture) == two_way_pcma(CALLER, CALLEE, 150)
