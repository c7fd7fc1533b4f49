"""Bounded fuzzing: random bytes and mutations of real messages must never raise."""

from capture_payloads import udp_payloads
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from locations import SHARED_CAPTURES as CAPTURES
from mutations import damage
from sipdiag.model import SessionDescription, SipMessage
from sipdiag.protocols.dns import DnsStreamFramer, parse_dns
from sipdiag.protocols.sdp import clock_rates, codec_names, parse_sdp
from sipdiag.protocols.sip import (
    SipStreamFramer,
    looks_like_sip,
    parse_digest,
    parse_message,
    uri_parts,
)

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _real(capture: str, keep) -> list[bytes]:
    return [payload for _, sport, dport, payload in udp_payloads(CAPTURES / capture) if keep(sport, dport, payload)][:20]


SIP_SAMPLES = _real("suricataverify__sip_compact_form.pcap", lambda s, d, p: looks_like_sip(p)) + _real(
    "redrabbit__sip-rtp-g711.pcap", lambda s, d, p: looks_like_sip(p)
)
DNS_SAMPLES = _real("zeek__dns-naptr.pcap", lambda s, d, p: 53 in (s, d)) + _real(
    "suricataverify__dns-srv-sip.pcap", lambda s, d, p: 53 in (s, d)
)


@st.composite
def mutated(draw, samples):
    """A real message with a few bytes replaced, inserted or cut out."""
    data = draw(st.sampled_from(samples))
    for _ in range(draw(st.integers(1, 8))):
        data = damage(draw, data, [0, 0x0A, 0x0D, 0x20, 0x22, 0x2C, 0x3A, 0x3B, 0x3C, 0x3E, 0xC0, 0xFF])
    return data


def _check_sip(data: bytes) -> None:
    looks_like_sip(data)
    message = parse_message(data)
    assert isinstance(message, SipMessage)
    for value in message.header_values("authorization") + message.header_values("www-authenticate"):
        parse_digest(value)
    for uri in [message.request_uri, message.from_uri, message.to_uri] + [c.uri for c in message.contacts]:
        if uri is not None:
            uri_parts(uri)


def _framed(chunks: list[bytes]) -> list[tuple[bytes, list[str]]]:
    framer = SipStreamFramer()
    messages = [m for chunk in chunks for m in framer.feed(chunk)] + framer.close()
    return [(m.data, m.errors) for m in messages]


def _check_stream(data: bytes, cut: int) -> None:
    split = _framed([data[:cut], data[cut:]])
    for piece, _ in split:
        assert looks_like_sip(piece)
    assert split == _framed([data])  # however the stream is cut, the same messages


@FUZZ
@given(st.binary(max_size=2000))
def test_sip_random_bytes(data):
    _check_sip(data)


@FUZZ
@given(mutated(SIP_SAMPLES))
def test_sip_mutated_real_messages(data):
    _check_sip(data)


@FUZZ
@given(st.one_of(mutated(SIP_SAMPLES), st.binary(max_size=2000)), st.integers(0, 3000))
def test_sip_stream_framer(data, cut):
    _check_stream(data + data, cut)


@FUZZ
@given(st.one_of(st.binary(max_size=1500), mutated([m.body for m in map(parse_message, SIP_SAMPLES) if m.body])))
def test_sdp(data):
    session = parse_sdp(data)
    assert isinstance(session, SessionDescription)
    for media in session.media:
        codec_names(media)
        clock_rates(media)


@FUZZ
@given(st.one_of(st.binary(max_size=600), mutated(DNS_SAMPLES)))
def test_dns(data):
    parse_dns(data)


@FUZZ
@given(st.binary(max_size=600), st.integers(0, 600))
def test_dns_stream_framer(data, cut):
    framer = DnsStreamFramer()
    for message in framer.feed(data[:cut]) + framer.feed(data[cut:]):
        parse_dns(message)
