"""RTP/RTCP accounting per stream: packet counts, loss, RFC 3550 jitter, RFC 4733 events.

The per-packet arithmetic runs in the scan kernel (capture/kernel/scan.c,
`account`), for the packets it walks itself and for the ones the decoder
hands over (`RtpTracker.account`). This module keeps what needs judgement:
what an SDP's rtpmap means for a payload type's clock (`expect`), and, once,
which flows are really RTP and how RTCP pairs with them (`streams`).
"""

from __future__ import annotations

import ipaddress
import math
import struct

from ..model import RtpStream, TelephoneEvent
from .sdp import STATIC_PAYLOAD_TYPES

_STATIC_CLOCK_RATES = {pt: rate for pt, (_name, rate) in STATIC_PAYLOAD_TYPES.items()}

_FIRST_DYNAMIC_PT = 96

# The kernel's own copies of rtp's constants are in scan.c (RFC 3550 A.1's
# MAX_DROPOUT and MAX_MISORDER, RFC 4733's recent events); this one the tests read.
# A call's digits number in the tens; a stream whose "events" run into
# thousands is noise, and keeping each would let memory grow with the capture.
MAX_EVENTS_PER_STREAM = 1000
# scan.c MAX_WATCHED: the streams one re-read can hand back (RtpTracker.watch).
MAX_WATCHED_STREAMS = 256

# scan.c `enum rate_kind` and `enum raised`: what RtpTracker.account raised before the kernel.
RATE_NONE, RATE_VALUE, RATE_BAD_TEXT, RATE_TOO_LARGE = 0, 1, 2, 3
RAISED_BAD_TEXT, RAISED_TOO_LARGE, RAISED_ZERO_RATE = 1, 2, 3

# scan.c `struct stream`: these fields, the latest events (the kernel's own), the
# packets per payload type, and the payload types in order of first appearance.
STREAM_FIELDS = (
    "first_frame", "last_frame", "packets", "marker_packets", "ssrc", "base_seq", "max_seq", "cycles",
    "expected_before", "bad_seq", "last_seq", "last_ts", "last_pt", "confirmed", "has_rate", "events",
    "rate_kind", "n_events", "dtmf_events", "jitter_samples", "sport", "dport", "alen", "n_pts", "watched",
    "first_time", "last_time", "max_gap_ms", "jitter", "jitter_sum", "max_jitter", "last_rate", "src", "dst",
)
STREAM_HEAD = struct.Struct("<25q7d16s16s16x")
PT_COUNTS = struct.Struct("<128I")
STREAM_RECORD_SIZE = STREAM_HEAD.size + PT_COUNTS.size + 128
_HAS_RATE, _JITTER, _LAST_RATE = (STREAM_FIELDS.index(name) for name in ("has_rate", "jitter", "last_rate"))
EVENT_RECORD = struct.Struct("<7q2d")  # stream, code, volume, duration, timestamp, first_frame, ended; rate, time
RTCP_RECORD = struct.Struct("<4q16s16s")  # alen, sport, dport, count, src, dst


def rtpmap_clock_rate(encoding: str) -> int | None:
    """'opus/48000/2' -> 48000; None when the rtpmap value carries no rate."""
    parts = encoding.split("/")
    if len(parts) >= 2 and parts[1].strip().isdigit():
        return int(parts[1])
    return None


def _rate_meaning(encoding: str) -> tuple[int, bool, float, Exception | None]:
    """(kind, telephone-event, rate, what account raises) for one rtpmap value of a dynamic payload type."""
    if not encoding:  # no text: no rate, as before the kernel
        return RATE_NONE, False, 0.0, None
    events = encoding.lower().startswith("telephone-event/")
    try:
        rate = rtpmap_clock_rate(encoding)
    except ValueError as error:  # a digit str.isdigit takes and int() does not ("²")
        return RATE_BAD_TEXT, events, 0.0, error
    if rate is None:
        return RATE_NONE, events, 0.0, None
    try:
        return RATE_VALUE, events, float(rate), None
    except OverflowError as error:
        return RATE_TOO_LARGE, events, math.inf, error


def _jitter_ms(has_rate: int, jitter: float, last_rate: float) -> float:
    """A stream record's jitter in milliseconds: its timestamp units on its latest clock."""
    rate = last_rate if has_rate else None
    return jitter * 1000.0 / rate if rate else 0.0


def _packed(ip: str) -> bytes | None:
    """The address bytes of text an SDP gave, when a packet's address can have that text."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return None
    if str(address) != ip or getattr(address, "scope_id", None):
        return None  # never the text of a packet's address: nothing will match it
    return address.packed


class RtpTracker:
    """RTP/RTCP accounting of one capture, kept by a scan kernel (capture.scan.Kernel)."""

    def __init__(self, kernel) -> None:
        self._kernel = kernel
        self._instance = kernel.instance
        self._call = kernel.call
        record_size = self._call["record_sizes"]() >> 10 & 0x7FF
        if record_size != STREAM_RECORD_SIZE:
            raise RuntimeError(f"scan.wasm's stream record is {record_size} bytes, rtp.py reads {STREAM_RECORD_SIZE}")
        self._streams_address = kernel.call["streams_address"]()
        # (ip, port) an SDP announced -> {pt: "name/rate"}
        self._expected: dict[tuple[str, int], dict[int, str]] = {}
        # (kernel endpoint index, pt) -> the exception account raises for that rtpmap value
        self._raises: dict[tuple[int, int], Exception] = {}
        rates = [float(_STATIC_CLOCK_RATES.get(pt, 0)) for pt in range(_FIRST_DYNAMIC_PT)]
        self._instance.write(self._call["static_rates_address"](), struct.pack(f"<{len(rates)}d", *rates))

    def expect(self, ip: str, port: int, rtpmap: dict[int, str]) -> None:
        """An SDP said media for `ip:port` arrives there, with these payload types."""
        self._expected.setdefault((ip, port), {}).update(rtpmap)
        raw = _packed(ip)
        if raw is not None and 0 <= port < 65536:
            self._instance.write(self._kernel.scratch, raw)
            index = self._call["expect"](len(raw), port)
            if index >= 0:
                for payload_type, encoding in rtpmap.items():
                    if _FIRST_DYNAMIC_PT <= payload_type < 128:
                        kind, events, rate, error = _rate_meaning(encoding)
                        self._call["set_rtpmap"](index, payload_type, kind, int(events), rate)
                        if error is not None:
                            self._raises[(index, payload_type)] = error
        # A payload number may now mean something else: look the rates up again.
        self._call["forget_payload_types"]()

    def account(self, frame: int, time: float, src: bytes, sport: int, dst: bytes, dport: int, data: bytes,
                start: int, end: int) -> None:
        """One UDP payload `data[start:end]` from src:sport to dst:dport (raw addresses) that may
        be RTP/RTCP, for a packet the decoder read itself (tunnels, fragments, ...)."""
        payload = data[start:end]
        self._instance.write(self._kernel.scratch, src.ljust(16, b"\0") + dst.ljust(16, b"\0") + payload)
        if self._call["account_scratch"](float(frame), time, len(src), sport, dport, len(payload)):
            raise self.raised()

    def watch(self, src_ip: str, src_port: int, dst_ip: str, dst_port: int, ssrc: int) -> int | None:
        """Have the kernel hand back this stream's packets as it accounts them (`watched_packet`).
        Returns the watch's number (the same for the same stream), None when no packet can
        have these addresses or the kernel's table of watches is full."""
        src, dst = _packed(src_ip), _packed(dst_ip)
        if src is None or dst is None or len(src) != len(dst):
            return None
        self._instance.write(self._kernel.scratch, src.ljust(16, b"\0") + dst)
        return self._call["watch"](len(src), src_port, dst_port, float(ssrc)) or None

    def watched_packet(self) -> tuple[int, float, bytes] | None:
        """After the walk stopped at a watched stream's packet, or `account` took one: (the watch's
        number, the stream's jitter in ms with this packet, the RTP packet); None for other packets."""
        number, index, address, length = self._kernel.watched()
        if not number:
            return None
        return number, self.jitter_ms(index), self._instance.read(address, length)

    def jitter_ms(self, index: int) -> float:
        """Stream `index`'s current jitter (ms), read from its record alone: as `streams()` gives it."""
        head = STREAM_HEAD.unpack(self._instance.read(self._streams_address + index * STREAM_RECORD_SIZE,
                                                      STREAM_HEAD.size))
        return _jitter_ms(head[_HAS_RATE], head[_JITTER], head[_LAST_RATE])

    def raised(self) -> Exception:
        """What account raised before the kernel kept the count, for the packet the kernel just stopped at."""
        kind = self._kernel.get("raised")
        if kind == RAISED_BAD_TEXT:
            entry = self._kernel.get("raised_entry")
            error = self._raises[divmod(entry, 128)]
            return type(error)(*error.args)
        if kind == RAISED_TOO_LARGE:
            return OverflowError("int too large to convert to float")
        try:
            return ZeroDivisionError(0.0 / 0)
        except ZeroDivisionError as error:  # what a jitter divided by a zero clock rate raised
            return error

    def _is_expected(self, stream: RtpStream) -> bool:
        expected = self._expected
        return (stream.dst_ip, stream.dst_port) in expected or (stream.src_ip, stream.src_port) in expected

    def streams(self) -> list[RtpStream]:
        """Flows that behaved like RTP or that an SDP announced, in order of appearance."""
        kernel, read = self._kernel, self._instance.read
        state = kernel.state()
        texts: dict[bytes, str] = {}

        def text(raw: bytes, length: int) -> str:
            raw = raw[:length]
            if raw not in texts:
                texts[raw] = str(ipaddress.ip_address(raw))
            return texts[raw]

        records = read(self._streams_address, STREAM_RECORD_SIZE * state["n_streams"])
        events_data = read(self._call["events_address"](), EVENT_RECORD.size * state["n_events"])
        events_of: dict[int, list[TelephoneEvent]] = {}
        for (owner, code, volume, duration, timestamp, first_frame, ended, rate,
             first_time) in EVENT_RECORD.iter_unpack(events_data):
            events_of.setdefault(owner, []).append(TelephoneEvent(
                code, volume, duration, int(rate), timestamp, first_frame, first_time, bool(ended)))
        rtcp: dict[tuple, int] = {}
        for alen, sport, dport, count, src, dst in RTCP_RECORD.iter_unpack(
                read(self._call["rtcp_address"](), RTCP_RECORD.size * state["n_rtcp"])):
            rtcp[(text(src, alen), sport, text(dst, alen), dport)] = count
        result = []
        for index in range(state["n_streams"]):
            base = index * STREAM_RECORD_SIZE
            record = dict(zip(STREAM_FIELDS, STREAM_HEAD.unpack_from(records, base)))
            counts = PT_COUNTS.unpack_from(records, base + STREAM_HEAD.size)
            order = records[base + STREAM_HEAD.size + PT_COUNTS.size : base + STREAM_RECORD_SIZE]
            alen = record["alen"]
            stream = RtpStream(text(record["src"], alen), record["sport"], text(record["dst"], alen),
                               record["dport"], record["ssrc"], record["first_frame"], record["first_time"])
            if not (record["confirmed"] or self._is_expected(stream)):
                continue
            stream.packets = record["packets"]
            stream.last_frame = record["last_frame"]
            stream.payload_types = {pt: counts[pt] for pt in order[: record["n_pts"]]}
            stream.marker_packets = record["marker_packets"]
            stream.max_gap_ms = record["max_gap_ms"]
            stream.expected = (record["expected_before"] + record["cycles"] + record["max_seq"]
                               - record["base_seq"] + 1)
            stream.lost = max(0, stream.expected - stream.packets)
            stream.last_time = record["last_time"]
            stream.jitter_ms = _jitter_ms(record["has_rate"], record["jitter"], record["last_rate"])
            stream.max_jitter_ms = record["max_jitter"]
            samples = record["jitter_samples"]
            stream.mean_jitter_ms = record["jitter_sum"] / samples if samples else 0.0
            stream.telephone_events = events_of.get(index, [])
            stream.dtmf_events = record["dtmf_events"]
            # RTCP normally uses the next port up (RFC 3550 11); with rtcp-mux
            # (RFC 5761) it shares the RTP ports.
            stream.rtcp_packets = (rtcp.get((stream.src_ip, stream.src_port + 1, stream.dst_ip, stream.dst_port + 1), 0)
                                   + rtcp.get((stream.src_ip, stream.src_port, stream.dst_ip, stream.dst_port), 0))
            result.append(stream)
        result.sort(key=lambda stream: stream.first_frame)
        return result
