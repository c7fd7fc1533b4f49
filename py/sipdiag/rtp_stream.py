"""One RTP stream packet by packet, and its audio, read again from the capture on demand.

The report keeps one summary line per stream so it stays small; the page's
RTP streams tab asks for a stream's per-packet series (delta, jitter, skew,
sequence errors) and its decoded voice only when the user opens that stream.
The capture is read again for it exactly as the analysis reads it, chunk by
chunk (sans-I/O, like engine.CaptureAnalysis): a scan kernel of its own
walks it and accounts every RTP packet, PacketDecoder reads what the kernel
hands back (the SDP gives payload types their clock rates), and the kernel
hands back as well each packet of the streams asked for (RtpTracker.watch)
right after accounting it. The jitter here is the report's jitter, the
kernel's, read from the stream's record packet for packet.

Definitions follow Wireshark's RTP Stream Analysis:
- delta: arrival time since the stream's previous packet;
- skew: where the RTP timestamp says the packet belongs minus when it came,
  both since the stream's first packet (positive: early; a steady slope is
  clock drift);
- sequence error: a packet whose sequence number is not the previous one + 1.
"""

from __future__ import annotations

import ipaddress
import struct

from .capture.decoder import PacketDecoder
from .capture.pcapfile import CaptureReader
from .capture.scan import Kernel, KernelFed, KernelReader
from .model import CaptureInfo, CaptureResult, hostport
from .protocols import g711
from .protocols.rtp import MAX_WATCHED_STREAMS, RtpTracker, rtpmap_clock_rate
from .protocols.sdp import STATIC_PAYLOAD_TYPES

_RTP_HEADER = struct.Struct("!BBHII")
_RTCP_TYPES = range(200, 205)
_FIRST_DYNAMIC_PT = 96
# A stream of 50 packets a second reaches this after 33 minutes: the series
# stops there (the summary still counts every packet), so the page's JSON stays
# a few megabytes.
MAX_SERIES_PACKETS = 100_000
# 20 minutes of 8 kHz audio is 19 MB of 16-bit PCM; more would strain the
# worker's heap and the page's, so playback covers the first 20 minutes.
MAX_AUDIO_SECONDS = 20 * 60
_G711_RATE = 8000


class _Recording:
    """What is kept of one requested stream while the capture is read again."""

    def __init__(self, src: str, dst: str, ssrc: int):
        self.src, self.dst, self.ssrc = src, dst, ssrc
        self.source, self.destination = _endpoint(src), _endpoint(dst)
        self.series = {name: [] for name in ("frame", "time", "seq", "payload_type", "marker", "seq_error",
                                             "delta_ms", "jitter_ms", "skew_ms")}
        self.packets = 0
        self.seq_errors = 0
        self.deltas: list[float] = []  # the deltas of packets without a marker, for min/mean
        self.max_delta_ms = 0.0
        self.max_skew_ms = 0.0
        self.last_seq: int | None = None
        self.last_time = 0.0
        self.first_time = 0.0
        # Skew is measured on the clock of the stream's first payload type.
        self.skew_payload_type: int | None = None
        self.skew_rate: int | None = None
        self.skew_first_time = 0.0
        self.skew_ts = 0  # extended timestamp (wraps unrolled) on that clock
        self.skew_last_ts = 0
        self.encodings: dict[int, str] = {}  # payload type -> its name (SDP rtpmap, else static), as first seen
        # Audio: (sample offset, payload type, payload) of each G.711 packet.
        self.audio: list[tuple[int, int, bytes]] = []
        self.audio_codec: int | None = None
        self.audio_first_time: float | None = None
        self.audio_ts = 0
        self.audio_last_ts = 0
        self.audio_cut = False
        self.pcm = b""


def _signed32(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - 0x100000000 if value >= 0x80000000 else value


class _StreamRecorder:
    """Stands where the analysis's RtpTracker stands in a PacketDecoder, in front of
    a tracker of its own: every SDP announcement and RTP candidate goes on to the
    tracker, and each packet of a stream asked for is recorded once accounted."""

    def __init__(self, tracker: RtpTracker, recordings: list[_Recording]):
        self.tracker = tracker
        self._announced: dict[tuple[str, int], dict[int, str]] = {}
        # The kernel's watch number -> the recordings of that stream (asked for once or more).
        self._by_watch: dict[int, list[_Recording]] = {}
        for recording in recordings:
            number = tracker.watch(*recording.source, *recording.destination, recording.ssrc)
            if number is not None:
                self._by_watch.setdefault(number, []).append(recording)

    def expect(self, ip: str, port: int, rtpmap: dict[int, str]) -> None:
        self._announced.setdefault((ip, port), {}).update(rtpmap)
        self.tracker.expect(ip, port, rtpmap)

    def account(self, frame: int, time: float, src: bytes, sport: int, dst: bytes, dport: int, data: bytes,
                start: int, end: int) -> None:
        """An RTP candidate the decoder found itself (tunnels, fragments, ...)."""
        self.tracker.account(frame, time, src, sport, dst, dport, data, start, end)  # raises as in the analysis
        self.watched(frame, time)

    def watched(self, frame: int, time: float) -> None:
        """The packet just accounted, when it belongs to a stream asked for."""
        packet = self.tracker.watched_packet()
        if packet is not None:
            number, jitter_ms, rtp = packet
            for recording in self._by_watch[number]:
                self._record(recording, frame, time, jitter_ms, rtp)

    def _record(self, recording: _Recording, frame: int, time: float, jitter_ms: float, rtp: bytes) -> None:
        first, second, seq, ts, _ssrc = _RTP_HEADER.unpack_from(rtp)
        payload_type = second & 0x7F
        rate = self._clock_rate(payload_type, recording)
        if payload_type not in recording.encodings:
            encoding = self._encoding(payload_type, recording)
            static = STATIC_PAYLOAD_TYPES.get(payload_type)
            recording.encodings[payload_type] = (encoding.split("/")[0] if encoding
                                                 else static[0] if static else f"payload type {payload_type}")
        first_packet = recording.last_seq is None
        seq_error = not first_packet and seq != (recording.last_seq + 1) & 0xFFFF
        delta_ms = 0.0 if first_packet else (time - recording.last_time) * 1000.0
        if first_packet:
            recording.first_time = time
        elif not second & 0x80:
            # A marker opens a talkspurt: the silence before it is meant, so it is
            # no delay (the report's max gap, and tshark's min/mean/max delta agree).
            recording.deltas.append(delta_ms)
            recording.max_delta_ms = max(recording.max_delta_ms, delta_ms)
        recording.packets += 1
        recording.seq_errors += seq_error
        recording.last_seq, recording.last_time = seq, time
        skew_ms = self._skew(recording, payload_type, rate, ts, time)
        if recording.packets <= MAX_SERIES_PACKETS:
            series = recording.series
            series["frame"].append(frame)
            series["time"].append(time)
            series["seq"].append(seq)
            series["payload_type"].append(payload_type)
            series["marker"].append(1 if second & 0x80 else 0)
            series["seq_error"].append(1 if seq_error else 0)
            series["delta_ms"].append(None if first_packet else round(delta_ms, 3))
            series["jitter_ms"].append(round(jitter_ms, 3))
            series["skew_ms"].append(None if skew_ms is None else round(skew_ms, 3))
        self._keep_audio(recording, self._g711(payload_type, recording), time, ts, rtp, 0, len(rtp), first)

    def _clock_rate(self, payload_type: int, recording: _Recording) -> int | None:
        encoding = self._encoding(payload_type, recording)
        if encoding is not None:
            return rtpmap_clock_rate(encoding)
        static = STATIC_PAYLOAD_TYPES.get(payload_type)
        return static[1] if static else None

    def _encoding(self, payload_type: int, recording: _Recording) -> str | None:
        # As the kernel looks it up: the receiver's SDP, else the sender's own.
        if payload_type < _FIRST_DYNAMIC_PT:
            return None
        for address in (recording.destination, recording.source):
            rtpmap = self._announced.get(address)
            if rtpmap and payload_type in rtpmap:
                return rtpmap[payload_type]
        return None

    def _g711(self, payload_type: int, recording: _Recording) -> int | None:
        """PCMU/PCMA for the static numbers, or a dynamic number an SDP maps to them at 8 kHz."""
        if payload_type in (g711.PCMU, g711.PCMA):
            return payload_type
        encoding = self._encoding(payload_type, recording)
        if encoding is None or rtpmap_clock_rate(encoding) != _G711_RATE:
            return None
        return g711.ENCODINGS.get(encoding.split("/")[0].strip().lower())

    @staticmethod
    def _skew(recording: _Recording, payload_type: int, rate: int | None, ts: int, time: float) -> float | None:
        if recording.skew_payload_type is None and rate:
            recording.skew_payload_type, recording.skew_rate = payload_type, rate
            recording.skew_last_ts = ts
            recording.skew_ts = 0
            recording.skew_first_time = time
        if payload_type != recording.skew_payload_type:
            return None  # another clock (telephone events, comfort noise): no skew on it
        recording.skew_ts += _signed32(ts - recording.skew_last_ts)
        recording.skew_last_ts = ts
        skew_ms = recording.skew_ts * 1000.0 / recording.skew_rate - (time - recording.skew_first_time) * 1000.0
        if abs(skew_ms) > abs(recording.max_skew_ms):
            recording.max_skew_ms = skew_ms
        return skew_ms

    @staticmethod
    def _keep_audio(recording: _Recording, codec: int | None, time: float, ts: int, data: bytes,
                    start: int, end: int, first: int) -> None:
        if codec is None or recording.audio_cut:
            return
        offset = start + 12 + 4 * (first & 0x0F)  # past the CSRC list
        if first & 0x10 and offset + 4 <= end:  # RFC 3550 5.3.1 header extension, its length in words
            offset += 4 + 4 * ((data[offset + 2] << 8) | data[offset + 3])
        if first & 0x20 and end > offset:  # RFC 3550 5.1 padding: its last byte counts it
            end -= data[end - 1]
        if offset >= end:
            return
        if recording.audio_first_time is None:
            recording.audio_first_time, recording.audio_codec = time, codec
            recording.audio_last_ts = ts
        recording.audio_ts += _signed32(ts - recording.audio_last_ts)
        recording.audio_last_ts = ts
        if recording.audio_ts < 0:
            return  # a late packet from before the first one heard
        if recording.audio_ts + end - offset > MAX_AUDIO_SECONDS * _G711_RATE:
            recording.audio_cut = True
            return
        recording.audio.append((recording.audio_ts, codec, data[offset:end]))


class StreamMeasurement(KernelFed):
    """Feed a capture in chunks; `finish()` measures each requested stream.

    `streams` are the report's {src, dst, ssrc} of `calls[].media[]` ("ip:port",
    "0x1234ABCD"); their G.711 voice is decoded too (`pcm(i)`).
    """

    def __init__(self, streams: list[dict]):
        self._recordings = [_Recording(s["src"], s["dst"], _ssrc_number(s["ssrc"])) for s in streams]
        distinct = {(r.src, r.dst, r.ssrc) for r in self._recordings}
        if len(distinct) > MAX_WATCHED_STREAMS:
            # Past the kernel's table of watches a stream would come back empty, not measured.
            raise ValueError(f"{len(distinct)} streams asked for at once; at most {MAX_WATCHED_STREAMS} "
                             "can be measured in one reading of the capture")
        self._result = CaptureResult(capture=CaptureInfo(file=""))
        kernel = Kernel()
        self._recorder = _StreamRecorder(RtpTracker(kernel), self._recordings)
        self._decoder = PacketDecoder(self._result, self._recorder)
        # The analysis already reported undecodable packets; here only RTP matters.
        self._reader = KernelReader(kernel, self._handed_back, _ignore, self._recorder.tracker.raised,
                                    self._recorder.watched)

    def _handed_back(self, records: list) -> None:
        self._decoder.decode_records(records, _ignore)
        self._forget_messages()

    def _forget_messages(self) -> None:
        # Signalling is decoded (its SDP gives payload types their clock rates)
        # but not needed afterwards: dropping it keeps memory flat.
        result = self._result
        for messages in (result.sip_messages, result.dns_messages, result.icmp_errors, result.tls_connections):
            messages.clear()

    def finish(self) -> list[dict]:
        """Per stream: {src, dst, ssrc, summary, series, audio}. RTP is not read
        from TCP, so the decoder's TCP streams need no closing."""
        self._reader.close()
        streams = {(stream.src, stream.dst, stream.ssrc): stream for stream in self._recorder.tracker.streams()}
        return [self._measured(recording, streams) for recording in self._recordings]

    def pcm(self, index: int) -> bytes:
        """The decoded voice of stream `index` (16-bit little-endian, 8 kHz mono), after `finish()`."""
        return self._recordings[index].pcm

    def _measured(self, recording: _Recording, streams: dict) -> dict:
        stream = streams.get((recording.src, recording.dst, recording.ssrc))
        deltas = recording.deltas
        summary = {
            "packets": recording.packets,
            "expected": stream.expected if stream else 0,
            "lost": stream.lost if stream else 0,
            "seq_errors": recording.seq_errors,
            "min_delta_ms": round(min(deltas), 3) if deltas else None,
            "mean_delta_ms": round(sum(deltas) / len(deltas), 3) if deltas else None,
            "max_delta_ms": round(recording.max_delta_ms, 3),
            "mean_jitter_ms": round(stream.mean_jitter_ms, 3) if stream else 0.0,
            "max_jitter_ms": round(stream.max_jitter_ms, 3) if stream else 0.0,
            "max_skew_ms": round(recording.max_skew_ms, 3),
            "clock_rate": recording.skew_rate,
            "first_time": recording.first_time if recording.packets else None,
            "last_time": recording.last_time if recording.packets else None,
            "series_truncated": recording.packets > MAX_SERIES_PACKETS,
        }
        return {"src": recording.src, "dst": recording.dst, "ssrc": f"0x{recording.ssrc:08X}", "summary": summary,
                "series": recording.series, "audio": self._decoded(recording)}

    @staticmethod
    def _decoded(recording: _Recording) -> dict:
        """Packets placed by their RTP timestamp on one 8 kHz line: what is
        missing (lost packets, silence suppression) stays silent."""
        if not recording.audio:
            carried = ", ".join(sorted(set(recording.encodings.values()))) or "no packets"
            return {"playable": False,
                    "reason": f"this stream carries {carried}, and only G.711 (PCMU, PCMA) is played",
                    "codec": None, "rate": _G711_RATE, "start_time": None, "samples": 0, "cut": False}
        codec = "PCMU" if recording.audio_codec == g711.PCMU else "PCMA"
        # A redacted capture keeps RTP headers and zeroes the voice. Zero bytes
        # are loud in both laws, and no coder sends a whole stream of them.
        if all(payload.count(0) == len(payload) for _offset, _codec, payload in recording.audio):
            return {"playable": False, "codec": codec, "rate": _G711_RATE, "start_time": recording.audio_first_time,
                    "samples": 0, "cut": False,
                    "reason": "the voice in this stream is zeroed (a redacted capture): there is nothing to play"}
        samples = max(offset + len(payload) for offset, _codec, payload in recording.audio)
        pcm = bytearray(2 * samples)
        for offset, packet_codec, payload in recording.audio:
            pcm[2 * offset : 2 * (offset + len(payload))] = g711.decode(packet_codec, payload)
        recording.pcm = bytes(pcm)
        recording.audio.clear()
        return {"playable": True, "reason": None, "codec": codec, "rate": _G711_RATE,
                "start_time": recording.audio_first_time, "samples": samples, "cut": recording.audio_cut}


class _FrameFinder:
    """The RtpTracker's seat in a decoder fed one frame: notes the RTP packet in it."""

    def __init__(self):
        self.found: dict | None = None

    def expect(self, ip: str, port: int, rtpmap: dict[int, str]) -> None:
        pass  # which stream a packet belongs to needs no payload types

    def account(self, frame: int, time: float, src: bytes, sport: int, dst: bytes, dport: int, data: bytes,
                start: int, end: int) -> None:
        if end - start >= 12 and data[start + 1] not in _RTCP_TYPES:
            ssrc = _RTP_HEADER.unpack_from(data, start)[4]
            self.found = {"src": hostport(str(ipaddress.ip_address(src)), sport),
                          "dst": hostport(str(ipaddress.ip_address(dst)), dport), "ssrc": f"0x{ssrc:08X}"}


class FrameLookup:
    """Which RTP stream holds frame `frame`: feed chunks until `feed` says the
    frame has been read, then `finish()` -> {src, dst, ssrc} or None."""

    def __init__(self, frame: int):
        self._frame = frame
        self._reader = CaptureReader()
        self._finder = _FrameFinder()
        self._decoder = PacketDecoder(CaptureResult(capture=CaptureInfo(file="")), self._finder)
        self._done = False

    def feed(self, data: bytes) -> bool:
        if not self._done:
            records = self._reader.feed(data)
            if records and records[-1][0] >= self._frame:
                self._decoder.decode_records([r for r in records if r[0] == self._frame], lambda frame, error: None)
                self._done = True
        return self._done

    def finish(self) -> dict | None:
        return self._finder.found


def _ignore(frame: int, error: Exception) -> None:
    pass


def _endpoint(text: str) -> tuple[str, int]:
    """'ip:port' or '[v6]:port' (model.hostport) -> (ip, port)."""
    ip, _, port = text.rpartition(":")
    return ip.strip("[]"), int(port)


def _ssrc_number(ssrc) -> int:
    return ssrc if isinstance(ssrc, int) else int(str(ssrc), 16)
