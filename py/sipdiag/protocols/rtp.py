"""RTP/RTCP accounting per stream: packet counts, loss, RFC 3550 jitter, RFC 4733 events.

`RtpTracker.account` runs for every candidate media packet of a capture, so it
does a handful of integer operations on per-stream state held in one dict.
Anything that needs more thought (which flows are really RTP, RTCP pairing)
happens once, in `streams()`.
"""

from __future__ import annotations

import struct

from ..model import RtpStream, TelephoneEvent
from .sdp import STATIC_PAYLOAD_TYPES

_STATIC_CLOCK_RATES = {pt: rate for pt, (_name, rate) in STATIC_PAYLOAD_TYPES.items()}

_FIRST_DYNAMIC_PT = 96
_RTP_HEADER = struct.Struct("!BBHII")  # V/P/X/CC, M/PT, sequence, timestamp, SSRC

# RFC 3550 A.1: a jump larger than this is a source restart, not loss; a packet
# up to MAX_MISORDER behind the highest sequence number is merely late.
_MAX_DROPOUT = 3000
_MAX_MISORDER = 100
_SEQ_MOD = 1 << 16

# RFC 3550 section 12.1: RTCP packet types SR, RR, SDES, BYE, APP sit where an
# RTP header has marker + payload type, so the second byte tells them apart.
_RTCP_TYPES = range(200, 205)

# RFC 4733 2.3: an event's packets share its start timestamp. A late
# retransmitted end packet of an earlier event is looked for among this many
# latest events before a new one is opened.
_RECENT_EVENTS = 4
# A call's digits number in the tens; a stream whose "events" run into
# thousands is noise, and keeping each would let memory grow with the capture.
MAX_EVENTS_PER_STREAM = 1000
# RFC 4733 2.3.5: an event's tone power (-dBm0) is the low 6 bits of its second byte.
_VOLUME_BITS = 0x3F
_END_BIT = 0x80
# RFC 4733 2.1: telephone events are usually clocked at 8000 Hz; an rtpmap without a rate says no more.
_DEFAULT_EVENT_RATE = 8000


def rtpmap_clock_rate(encoding: str) -> int | None:
    """'opus/48000/2' -> 48000; None when the rtpmap value carries no rate."""
    parts = encoding.split("/")
    if len(parts) >= 2 and parts[1].strip().isdigit():
        return int(parts[1])
    return None


class _StreamState:
    """Running RFC 3550 receiver state for one (flow, SSRC).

    Counters live here, not on the RtpStream, and are copied over once in
    `RtpTracker.streams()`: the per-packet path touches one object.
    """

    __slots__ = (
        "stream",
        "ssrc",
        "packets",
        "last_frame",
        "payload_types",
        "marker_packets",
        "max_gap_ms",
        "base_seq",
        "max_seq",
        "cycles",
        "expected_before",
        "bad_seq",
        "confirmed",
        "last_seq",
        "last_time",
        "last_ts",
        "last_payload_type",
        "last_rate",
        "jitter",
        "jitter_sum",
        "jitter_samples",
        "max_jitter",
        "events",
    )

    def __init__(self, stream: RtpStream, seq: int):
        self.stream = stream
        self.ssrc = stream.ssrc
        self.packets = 0
        self.last_frame = 0
        self.payload_types: dict[int, int] = {}
        self.marker_packets = 0
        self.max_gap_ms = 0.0
        self.base_seq = seq
        self.max_seq = seq
        self.cycles = 0
        self.expected_before = 0  # sequence range covered before a restart
        self.bad_seq = -1
        self.confirmed = False  # saw two consecutive sequence numbers
        self.last_seq = seq
        self.last_time = 0.0
        self.last_ts = 0
        self.last_payload_type = -1
        self.last_rate = None
        self.jitter = 0.0  # in timestamp units, as RFC 3550 6.4.1 keeps it
        self.jitter_sum = 0.0
        self.jitter_samples = 0
        self.max_jitter = 0.0
        self.events = False  # the current payload type is telephone-event (RFC 4733)


class RtpTracker:
    def __init__(self):
        # ((src_ip, src_port, dst_ip, dst_port), ssrc) -> state
        self._states: dict[tuple, _StreamState] = {}
        # flow -> the state its last packet went to: a flow almost always
        # carries one SSRC, so this skips building the (flow, ssrc) key.
        self._current: dict[tuple, _StreamState] = {}
        # (ip, port) an SDP announced -> {pt: "name/rate"}
        self._expected: dict[tuple[str, int], dict[int, str]] = {}
        # (src_ip, src_port, dst_ip, dst_port) of RTCP packets -> count
        self._rtcp: dict[tuple, int] = {}
        self._unconfirmed_limit = 4096

    def expect(self, ip: str, port: int, rtpmap: dict[int, str]) -> None:
        """An SDP said media for `ip:port` arrives there, with these payload types."""
        self._expected.setdefault((ip, port), {}).update(rtpmap)
        # A payload number may now mean something else: look the rates up again.
        for state in self._states.values():
            state.last_payload_type = -1

    def account(self, frame: int, time: float, flow: tuple, data: bytes, start: int, end: int) -> None:
        """One UDP payload `data[start:end]` of `flow` (src_ip, src_port, dst_ip, dst_port) that may be RTP/RTCP.

        Runs for most packets of a VoIP capture: the in-order packet of a known
        stream takes one header unpack, one dict lookup and no calls.
        """
        if end - start < 12:
            if end - start >= 8 and data[start + 1] in _RTCP_TYPES:
                self._rtcp[flow] = self._rtcp.get(flow, 0) + 1
            return
        _first, second, seq, ts, ssrc = _RTP_HEADER.unpack_from(data, start)
        if second in _RTCP_TYPES:
            self._rtcp[flow] = self._rtcp.get(flow, 0) + 1
            return
        state = self._current.get(flow)
        if state is None or state.ssrc != ssrc:
            state = self._states.get((flow, ssrc))
            if state is None:
                state = self._new_state(frame, time, flow, ssrc, seq)
            else:
                self._update_sequence(state, seq)
            self._current[flow] = state
        elif seq == ((state.max_seq + 1) & 0xFFFF) and state.last_seq == state.max_seq:
            # The usual case, inlined: the next packet in order.
            state.confirmed = True
            state.last_seq = state.max_seq = seq
            if seq == 0:
                state.cycles += _SEQ_MOD
        else:
            self._update_sequence(state, seq)
        state.packets += 1
        state.last_frame = frame
        payload_type = second & 0x7F
        counts = state.payload_types
        counts[payload_type] = counts.get(payload_type, 0) + 1
        if second & 0x80:
            # A marker starts a talkspurt: the silence before it is intended,
            # so it is not a gap (tshark's "Max Delta" agrees).
            state.marker_packets += 1
        elif state.packets > 1:
            gap_ms = (time - state.last_time) * 1000.0
            if gap_ms > state.max_gap_ms:
                state.max_gap_ms = gap_ms
        rate = state.last_rate
        if payload_type != state.last_payload_type:
            # Rarely taken (a stream switches payload type for DTMF or a codec
            # change): the per-packet path below only reads what is settled here.
            previous_rate = rate
            encoding = self._rtpmap(payload_type, flow) if payload_type >= _FIRST_DYNAMIC_PT else None
            rate = state.last_rate = (rtpmap_clock_rate(encoding) if encoding
                                      else _STATIC_CLOCK_RATES.get(payload_type))
            state.events = encoding is not None and encoding.lower().startswith("telephone-event/")
            state.last_payload_type = payload_type
            if rate != previous_rate:
                rate = None  # jitter compares packets of one media clock
        if rate is not None:
            # RFC 3550 6.4.1: J += (|D| - J) / 16, D from arrival time at the media clock.
            ts_delta = (ts - state.last_ts) & 0xFFFFFFFF
            if ts_delta >= 0x80000000:
                ts_delta -= 0x100000000
            difference = (time - state.last_time) * rate - ts_delta
            jitter = state.jitter
            jitter += ((difference if difference >= 0 else -difference) - jitter) / 16.0
            state.jitter = jitter
            jitter_ms = jitter * 1000.0 / rate
            state.jitter_sum += jitter_ms
            state.jitter_samples += 1
            if jitter_ms > state.max_jitter:
                state.max_jitter = jitter_ms
        state.last_time = time
        state.last_ts = ts
        if state.events:
            self._telephone_event(state, frame, time, data, start, end, ts)

    def _new_state(self, frame: int, time: float, flow: tuple, ssrc: int, seq: int) -> _StreamState:
        if len(self._states) >= self._unconfirmed_limit:
            self._forget_noise()
        stream = RtpStream(*flow, ssrc, frame, time)
        state = self._states[(flow, ssrc)] = _StreamState(stream, seq)
        return state

    def _update_sequence(self, state: _StreamState, seq: int) -> None:
        """RFC 3550 A.1 without probation: every packet counts, resyncs restart the range."""
        if seq == (state.last_seq + 1) % _SEQ_MOD:
            state.confirmed = True
        state.last_seq = seq
        delta = (seq - state.max_seq) % _SEQ_MOD
        if delta < _MAX_DROPOUT:
            if seq < state.max_seq:
                state.cycles += _SEQ_MOD
            state.max_seq = seq
        elif delta <= _SEQ_MOD - _MAX_MISORDER:
            # A big jump: two in a row mean the sender restarted its numbering.
            if seq == state.bad_seq:
                state.expected_before += state.cycles + state.max_seq - state.base_seq + 1
                # The jumped packet before this one opened the new range.
                state.base_seq = seq - 1
                state.max_seq = seq
                state.cycles = 0
                state.bad_seq = -1
            else:
                state.bad_seq = (seq + 1) % _SEQ_MOD
        # else: a late or duplicate packet, counted but not moving the range

    @staticmethod
    def _telephone_event(state: _StreamState, frame: int, time: float, data: bytes, start: int, end: int,
                         ts: int) -> None:
        """One RFC 4733 packet: opens its event or updates it (duration, volume, end).

        The end packet is sent three times with one timestamp (RFC 4733 2.5.1.4):
        the event's `ended` flips once, so it counts once.
        """
        first = data[start]
        offset = start + 12 + 4 * (first & 0x0F)  # past the CSRC list
        if first & 0x10 and offset + 4 <= end:  # RFC 3550 5.3.1 header extension, its length in words
            offset += 4 + 4 * ((data[offset + 2] << 8) | data[offset + 3])
        if offset + 4 > end:
            return
        # Several events packed in one packet (RFC 4733 2.5.1.5) are rare: the first block is read.
        code, flags, duration = data[offset], data[offset + 1], (data[offset + 2] << 8) | data[offset + 3]
        stream = state.stream
        event = next((e for e in reversed(stream.telephone_events[-_RECENT_EVENTS:]) if e.timestamp == ts), None)
        if event is None:
            if len(stream.telephone_events) >= MAX_EVENTS_PER_STREAM:
                return
            event = TelephoneEvent(code, flags & _VOLUME_BITS, duration, state.last_rate or _DEFAULT_EVENT_RATE,
                                   ts, frame, time)
            stream.telephone_events.append(event)
        else:
            event.duration = max(event.duration, duration)
            event.volume = flags & _VOLUME_BITS
        if flags & _END_BIT and not event.ended:
            event.ended = True
            stream.dtmf_events += 1

    def _rtpmap(self, payload_type: int, key: tuple) -> str | None:
        # The receiver's SDP defines the numbers; with symmetric RTP the sender's
        # own SDP (announcing its source address) says the same.
        for address in ((key[2], key[3]), (key[0], key[1])):
            rtpmap = self._expected.get(address)
            if rtpmap and payload_type in rtpmap:
                return rtpmap[payload_type]
        return None

    def _is_expected(self, state: _StreamState) -> bool:
        stream = state.stream
        return (stream.dst_ip, stream.dst_port) in self._expected or (
            stream.src_ip,
            stream.src_port,
        ) in self._expected

    def _forget_noise(self) -> None:
        """Random UDP that happens to start like RTP would grow the table without end."""
        self._states = {
            key: state
            for key, state in self._states.items()
            if state.confirmed or self._is_expected(state) or state.packets > 1
        }
        self._current.clear()
        self._unconfirmed_limit = max(4096, 2 * len(self._states))

    def streams(self) -> list[RtpStream]:
        """Flows that behaved like RTP or that an SDP announced, in order of appearance."""
        result = []
        for state in self._states.values():
            if not (state.confirmed or self._is_expected(state)):
                continue
            stream = state.stream
            stream.packets = state.packets
            stream.last_frame = state.last_frame
            stream.payload_types = state.payload_types
            stream.marker_packets = state.marker_packets
            stream.max_gap_ms = state.max_gap_ms
            stream.expected = state.expected_before + state.cycles + state.max_seq - state.base_seq + 1
            stream.lost = max(0, stream.expected - stream.packets)
            stream.last_time = state.last_time
            rate = state.last_rate
            stream.jitter_ms = state.jitter * 1000.0 / rate if rate else 0.0
            stream.max_jitter_ms = state.max_jitter
            stream.mean_jitter_ms = (
                state.jitter_sum / state.jitter_samples if state.jitter_samples else 0.0
            )
            stream.rtcp_packets = self._rtcp_count(stream)
            result.append(stream)
        result.sort(key=lambda stream: stream.first_frame)
        return result

    def _rtcp_count(self, stream: RtpStream) -> int:
        # RTCP normally uses the next port up (RFC 3550 11); with rtcp-mux
        # (RFC 5761) it shares the RTP ports.
        paired = (stream.src_ip, stream.src_port + 1, stream.dst_ip, stream.dst_port + 1)
        muxed = (stream.src_ip, stream.src_port, stream.dst_ip, stream.dst_port)
        return self._rtcp.get(paired, 0) + self._rtcp.get(muxed, 0)
