"""SDP parser: byte literals and offers/answers from the shared captures."""

from capture_payloads import udp_payloads
from sipdiag.protocols.sdp import clock_rates, codec_names, parse_sdp
from sipdiag.protocols.sip import looks_like_sip, parse_message

OFFER = (
    b"v=0\r\n"
    b"o=- 3434 3434 IN IP6 2001:db8::5\r\n"
    b"s=call\r\n"
    b"c=IN IP4 203.0.113.9/127\r\n"
    b"t=0 0\r\n"
    b"a=sendonly\r\n"
    b"m=audio 40000 RTP/AVP 0 8 18 101 96\r\n"
    b"a=rtpmap:101 telephone-event/8000\r\n"
    b"a=fmtp:101 0-16\r\n"
    b"a=rtpmap:96 opus/48000/2\r\n"
    b"a=rtcp:40001 IN IP4 203.0.113.9\r\n"
    b"a=recvonly\r\n"
    b"m=video 0/2 RTP/AVP 34\r\n"
    b"c=IN IP4 10.1.2.3\r\n"
    b"a=inactive\r\n"
)


def test_session_and_media_levels():
    session = parse_sdp(OFFER)
    assert session.errors == []
    assert (session.origin_address, session.connection, session.direction) == ("2001:db8::5", "203.0.113.9", "sendonly")
    audio, video = session.media
    assert (audio.media, audio.port, audio.protocol) == ("audio", 40000, "RTP/AVP")
    assert audio.payload_types == [0, 8, 18, 101, 96]
    assert audio.rtpmap == {101: "telephone-event/8000", 96: "opus/48000/2"}
    assert audio.fmtp == {101: "0-16"}
    assert (audio.rtcp, audio.direction, audio.connection) == ("40001 IN IP4 203.0.113.9", "recvonly", None)
    assert (video.port, video.connection, video.direction) == (0, "10.1.2.3", "inactive")


def test_codec_names_and_clock_rates_use_static_types_without_rtpmap():
    audio, video = parse_sdp(OFFER).media
    assert codec_names(audio) == ["PCMU", "PCMA", "G729", "telephone-event", "opus"]
    assert clock_rates(audio) == {0: 8000, 8: 8000, 18: 8000, 101: 8000, 96: 48000}
    assert codec_names(video) == ["H263"]
    assert clock_rates(video) == {34: 90000}


def test_bare_lf_and_junk_lines():
    session = parse_sdp(b"v=0\nthis is junk\nm=audio x RTP/AVP 0\na=rtpmap:0 PCMU/8000\nm=audio 5004 RTP/AVP 8\n\xff\xfe=\n")
    assert session.errors == ["not an SDP line: 'this is junk'", "bad m= line: 'm=audio x RTP/AVP 0'", "not an SDP line: '\ufffd\ufffd='"]
    # the rtpmap of the unreadable m= section is not attached anywhere
    assert [(m.port, m.rtpmap) for m in session.media] == [(5004, {})]


def test_unknown_dynamic_payload_type_is_named_by_number():
    [media] = parse_sdp(b"m=audio 1 RTP/AVP 99\r\n").media
    assert codec_names(media) == ["99"] and clock_rates(media) == {}


def test_real_offers_and_answers_match_tshark(shared_captures):
    """tshark -Y sdp -e frame.number -e sdp.connection_info.address -e sdp.media.port -e sdp.mime.type"""
    found = []
    for frame, _, _, payload in udp_payloads(shared_captures / "redrabbit__sip-rtp-g711.pcap"):
        message = parse_message(payload) if looks_like_sip(payload) else None
        if message is not None and message.sdp is not None:
            media = message.sdp.media[0]
            found.append((frame, message.sdp.connection, message.sdp.origin_address, media.port, codec_names(media)))
    assert found == [
        (1, "10.0.2.20", "10.0.2.20", 6000, ["PCMU"]),
        (4, "10.0.2.15", "10.0.2.15", 27942, ["PCMU", "telephone-event"]),
        (434, "10.0.2.20", "10.0.2.20", 6000, ["PCMA"]),
        (437, "10.0.2.15", "10.0.2.15", 28102, ["PCMA", "telephone-event"]),
    ]
