"""The facts the engine extracts from a capture, shared by every analysis.

The packet layer (`capture/decoder.py` and friends) fills a `CaptureResult`; the
diagnosis modules only read it. Keeping these types free of parsing logic lets
each side be tested on its own: analyses from hand-built messages, the packet
layer against tshark.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field


def hostport(ip: str, port: int) -> str:
    """'ip:port', with IPv6 addresses bracketed so the port stays unambiguous."""
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


@dataclass
class Via:
    transport: str  # "UDP", "TCP", "TLS", "WS", "WSS", ...
    host: str
    port: int | None
    branch: str | None = None
    received: str | None = None
    rport: int | None = None  # None when absent; 0 when present without a value
    params: dict[str, str] = field(default_factory=dict)


@dataclass
class NameAddr:
    """A From/To/Contact/Route value: optional display name, URI, parameters."""

    uri: str
    display_name: str | None = None
    params: dict[str, str] = field(default_factory=dict)  # tag, expires, q, ...


@dataclass
class DigestCredentials:
    """Authorization / Proxy-Authorization or WWW-/Proxy-Authenticate contents."""

    scheme: str  # "Digest"
    params: dict[str, str] = field(default_factory=dict)  # realm, nonce, algorithm, ...


@dataclass
class SdpMedia:
    media: str  # "audio", "video", "application", ...
    port: int
    protocol: str  # "RTP/AVP", "RTP/SAVP", ...
    payload_types: list[int] = field(default_factory=list)
    rtpmap: dict[int, str] = field(default_factory=dict)  # pt -> "PCMU/8000"
    fmtp: dict[int, str] = field(default_factory=dict)
    connection: str | None = None  # media-level c= address, else None
    direction: str | None = None  # media-level sendrecv/sendonly/recvonly/inactive
    rtcp: str | None = None  # raw a=rtcp value


@dataclass
class SessionDescription:
    origin_address: str | None = None  # o= unicast address
    connection: str | None = None  # session-level c= address
    direction: str | None = None  # session-level a=sendrecv/...
    media: list[SdpMedia] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class Headers:
    """A message's headers in order: (canonical lower-case long name, value)
    pairs when iterated. Kept as two tuples, not a list of pairs: a capture
    holds hundreds of thousands of messages, and one tuple of names serves
    every message with the same headers in the same order (sip.parse_message)."""

    __slots__ = ("names", "values")

    def __init__(self, pairs: Iterable[tuple[str, str]] = ()) -> None:
        pairs = list(pairs)
        self.names: tuple[str, ...] = tuple(name for name, _ in pairs)
        self.values: tuple[str, ...] = tuple(value for _, value in pairs)

    @classmethod
    def of(cls, names: tuple[str, ...], values: tuple[str, ...]) -> Headers:
        headers = cls.__new__(cls)
        headers.names, headers.values = names, values
        return headers

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return zip(self.names, self.values)

    def __len__(self) -> int:
        return len(self.names)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Headers) and (self.names, self.values) == (other.names, other.values)

    def __repr__(self) -> str:
        return f"Headers({list(self)!r})"

    def first(self, name: str) -> str | None:
        try:
            return self.values[self.names.index(name)]
        except ValueError:
            return None

    def every(self, name: str) -> list[str]:
        return [value for key, value in zip(self.names, self.values) if key == name]


@dataclass(slots=True)  # no per-message __dict__: a capture keeps hundreds of thousands
class SipMessage:
    """One SIP request or response, as parsed, plus where the capture saw it.

    `sip.parse_message` fills the message part; the engine fills the capture
    part (frame, time, addresses, transport).
    """

    raw: bytes
    method: str | None = None  # request method, None for a response
    request_uri: str | None = None
    status: int | None = None  # response code, None for a request
    reason: str | None = None
    # (canonical lower-case long header name, value) in order; compact forms
    # are expanded ("i" -> "call-id") and folded lines joined.
    headers: Headers = field(default_factory=Headers)  # or any (name, value) pairs, made Headers
    body: bytes = b""
    errors: list[str] = field(default_factory=list)
    # capture context
    frame: int = 0
    time: float = 0.0
    src_ip: str = ""
    src_port: int = 0
    dst_ip: str = ""
    dst_port: int = 0
    transport: str = "udp"  # "udp", "tcp", "ws"
    # (file offset, length) of the message's bytes when they are one slice of
    # the file (not reassembled, unmasked or inflated): `raw` can then be let go
    # and read back on demand (engine.CaptureAnalysis(keep_text=False)).
    source: tuple[int, int] | None = None

    # Derived values are filled by sip.parse_message so analyses read plain
    # attributes instead of re-parsing headers.
    call_id: str | None = None
    cseq: int | None = None
    cseq_method: str | None = None
    from_addr: NameAddr | None = None
    to_addr: NameAddr | None = None
    # Tuples: most messages share their parsed values with others (sip._parsed_vias)
    # and an empty tuple costs no memory, where hundreds of thousands of empty lists would.
    vias: tuple[Via, ...] = ()
    contacts: tuple[NameAddr, ...] = ()
    expires: int | None = None  # Expires header
    content_type: str | None = None
    sdp: SessionDescription | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.headers, Headers):
            self.headers = Headers(self.headers)

    def header(self, name: str) -> str | None:
        """First value of a header (canonical lower-case long name)."""
        return self.headers.first(name)

    def header_values(self, name: str) -> list[str]:
        """Every occurrence of a header, in order (not split on commas)."""
        return self.headers.every(name)

    @property
    def is_request(self) -> bool:
        return self.method is not None

    @property
    def has_start_line(self) -> bool:
        """A request with its method or a response with its status: a damaged
        first line leaves nothing a transaction could be matched by."""
        return self.method is not None or self.status is not None

    @property
    def from_uri(self) -> str | None:
        return self.from_addr.uri if self.from_addr else None

    @property
    def to_uri(self) -> str | None:
        return self.to_addr.uri if self.to_addr else None

    @property
    def src(self) -> str:
        return hostport(self.src_ip, self.src_port)

    @property
    def dst(self) -> str:
        return hostport(self.dst_ip, self.dst_port)


@dataclass
class DnsRecord:
    name: str
    rtype: str  # "A", "AAAA", "SRV", "NAPTR", "CNAME", ... or "TYPE65"
    ttl: int
    data: str  # presentation form: "1.2.3.4", "10 5 5060 sip.example.com.", ...


@dataclass
class DnsMessage:
    frame: int
    time: float
    src_ip: str
    src_port: int
    dst_ip: str
    dst_port: int
    transport: str  # "udp" | "tcp"
    id: int
    is_response: bool
    opcode: int
    rcode: int
    qname: str | None
    qtype: str | None  # "A", "SRV", ... or "TYPE65"
    answers: list[DnsRecord] = field(default_factory=list)
    authority: list[DnsRecord] = field(default_factory=list)
    additional: list[DnsRecord] = field(default_factory=list)


@dataclass
class TelephoneEvent:
    """One RFC 4733 event (a DTMF digit, flash, ...) as the packets of one stream told it.

    Every packet of an event carries the event's start as its RTP timestamp and
    the time elapsed since then as its duration, so the packets sharing a
    timestamp are one event, however often the end packet is repeated.
    """

    event: int  # RFC 4733 3.2: 0-9, 10 "*", 11 "#", 12-15 A-D, 16 flash
    volume: int  # 0-63, the tone's power in -dBm0, as last sent
    duration: int  # timestamp units, the largest seen (the end packet's, once it came)
    clock_rate: int  # of the telephone-event payload type
    timestamp: int  # RTP timestamp shared by the event's packets: its start
    first_frame: int
    first_time: float
    ended: bool = False  # an end packet (E bit) was seen

    @property
    def duration_ms(self) -> float:
        return self.duration * 1000.0 / self.clock_rate


@dataclass
class RtpStream:
    """RTP packets of one direction of one flow and SSRC, accounted cheaply."""

    src_ip: str
    src_port: int
    dst_ip: str
    dst_port: int
    ssrc: int
    first_frame: int
    first_time: float
    last_time: float = 0.0
    packets: int = 0
    payload_types: dict[int, int] = field(default_factory=dict)  # pt -> packets
    expected: int = 0  # from extended sequence numbers (RFC 3550 A.3)
    lost: int = 0
    jitter_ms: float = 0.0  # RFC 3550 interarrival jitter, last value
    max_jitter_ms: float = 0.0
    max_gap_ms: float = 0.0
    marker_packets: int = 0
    dtmf_events: int = 0  # RFC 4733 events (end-of-event packets counted once)
    # RFC 4733 events, ended or not (the first rtp.MAX_EVENTS_PER_STREAM of the stream)
    telephone_events: list[TelephoneEvent] = field(default_factory=list)
    rtcp_packets: int = 0  # RTCP seen on the paired port (port + 1)
    last_frame: int = 0
    mean_jitter_ms: float = 0.0  # mean of the per-packet jitter values (as tshark shows)

    @property
    def src(self) -> str:
        return hostport(self.src_ip, self.src_port)

    @property
    def dst(self) -> str:
        return hostport(self.dst_ip, self.dst_port)


@dataclass
class IcmpError:
    """An ICMP/ICMPv6 error quoting a packet we may have sent (evidence)."""

    frame: int
    time: float
    reporter_ip: str  # who sent the ICMP error
    icmp_type: int
    icmp_code: int
    description: str  # "port unreachable", "host unreachable", ...
    quoted_protocol: str | None  # "udp" | "tcp" | None
    quoted_src_ip: str | None
    quoted_src_port: int | None
    quoted_dst_ip: str | None
    quoted_dst_port: int | None
    quoted_sip: bool  # the quoted payload starts like a SIP message


@dataclass
class TlsConnection:
    client_ip: str
    client_port: int
    server_ip: str
    server_port: int
    first_frame: int
    sni: str | None = None
    packets: int = 0


@dataclass
class TcpConnection:
    """A TCP connection attempt and how it went (for 'no response' diagnosis)."""

    client_ip: str
    client_port: int
    server_ip: str
    server_port: int
    syn_frame: int
    syn_count: int = 1  # SYN retransmissions show an unanswered connect
    established: bool = False
    reset_frame: int | None = None
    reset_by: str | None = None  # "client" | "server"


@dataclass
class CaptureInfo:
    file: str
    format: str | None = None  # "pcap" | "pcapng" | None when not a capture
    packets: int = 0
    link_types: list[int] = field(default_factory=list)
    first_time: float | None = None
    last_time: float | None = None
    warnings: list[str] = field(default_factory=list)


@dataclass
class CaptureResult:
    capture: CaptureInfo
    sip_messages: list[SipMessage] = field(default_factory=list)
    dns_messages: list[DnsMessage] = field(default_factory=list)
    rtp_streams: list[RtpStream] = field(default_factory=list)
    icmp_errors: list[IcmpError] = field(default_factory=list)
    tls_connections: list[TlsConnection] = field(default_factory=list)
    tcp_connections: list[TcpConnection] = field(default_factory=list)
    # What several analyses derive from the same messages (the calls, the
    # registration sequences, ...), kept here once computed: analysis/derived.py.
    derived: dict = field(default_factory=dict, repr=False, compare=False)
