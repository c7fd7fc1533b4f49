#!/usr/bin/env python3
"""Build a large, RTP-heavy capture from a real one, like a busy SBC trunk.

    python3 bench/make_capture.py --size 100M            # -> bench/out/redrabbit__sip-rtp-g711-100M.pcap
    python3 bench/make_capture.py --packets 1000000 --source CAPTURE -o OUT.pcap

The output starts with the source capture unchanged (all of its SIP), then
many clones of its first call (see call_template.py), started one after
another so that --concurrent calls are up at once. Each clone gets its own
Call-ID, Via branches, tags and RTP/RTCP ports (in its SDP and its media
packets, so the engine sees announced streams), and its RTP streams run for
--call-seconds with consecutive sequence numbers and timestamps; arrival
times repeat the source's real inter-packet gaps. Enough calls are made to
reach the target; the result is deterministic (same arguments, same bytes).
The file is written as it is generated: memory does not grow with its size.
"""

from __future__ import annotations

import argparse
import heapq
import math
import re
import struct
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import dpkt
from call_template import CallTemplate, Frame, MediaStream, read_template

BENCH = Path(__file__).resolve().parent
OUT = BENCH / "out"
DEFAULT_SOURCE = BENCH.parent.parent / "shared" / "captures" / "redrabbit__sip-rtp-g711.pcap"
SUFFIXES = {"K": 10**3, "M": 10**6, "G": 10**9}
RECORD_HEADER = struct.Struct("<IIII")
PCAP_SNAPLEN = 262144
# Clones' media ports: pairs (RTP even, RTCP odd) from here up, one block per call.
PORT_FLOOR = 10000
GAP_AFTER_SOURCE = 1.0  # seconds between the source's last packet and the first clone

BRANCH_OR_TAG = re.compile(rb"((?:branch|tag)=)([^;,>\s]+)", re.IGNORECASE)
CALL_ID_VALUE = re.compile(rb"^((?:call-id|i)[ \t]*:[ \t]*)(\S+)", re.IGNORECASE | re.MULTILINE)
CONTENT_LENGTH = re.compile(rb"^((?:content-length|l)[ \t]*:[ \t]*)(\d+)", re.IGNORECASE | re.MULTILINE)
SDP_HOST = re.compile(rb"^c=IN IP4 ([0-9.]+)", re.MULTILINE)
SDP_PORT = re.compile(rb"^(m=\w+ |a=rtcp:)(\d+)", re.MULTILINE)


def parse_amount(text: str) -> int:
    """'100M' -> 100_000_000 (decimal suffixes K, M, G)."""
    text = text.strip().upper()
    scale = SUFFIXES.get(text[-1:], 1)
    return int(float(text.rstrip("KMG")) * scale)


def ip_checksum(header: bytes) -> int:
    total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


class CallCloner:
    """Makes clone number k of the template call, as (time, frame bytes) in time order."""

    def __init__(self, template: CallTemplate, call_seconds: float, concurrent: int):
        self.template = template
        self.call_seconds = call_seconds
        self.origin = template.opening[0].time
        self.addresses = sorted(template.media_addresses)
        # Call k reuses call k - port_blocks's ports; with twice as many blocks as calls up at
        # once, that call ended long before, so no two live calls share a port.
        self.port_blocks = (65536 - PORT_FLOOR) // (2 * len(self.addresses))
        if self.port_blocks < 2 * concurrent:
            raise SystemExit("make_capture: too many concurrent calls for distinct media ports")

    def media_port(self, k: int, host: str, port: int) -> int:
        """The clone's port for a template endpoint (RTP port or the RTCP port above it)."""
        for rtcp in (0, 1):
            if (host, port - rtcp) in self.template.media_addresses:
                index = self.addresses.index((host, port - rtcp))
                block = k % self.port_blocks
                return PORT_FLOOR + 2 * (block * len(self.addresses) + index) + rtcp
        return port

    def sip_payload(self, k: int, payload: bytes) -> bytes:
        suffix = f"-{k:x}".encode()
        text = CALL_ID_VALUE.sub(lambda m: m.group(1) + f"{k:x}-".encode() + m.group(2), payload)
        text = BRANCH_OR_TAG.sub(lambda m: m.group(1) + m.group(2) + suffix, text)
        head, separator, body = text.partition(b"\r\n\r\n")
        host = SDP_HOST.search(body)
        if host:
            host_text = host.group(1).decode()
            body = SDP_PORT.sub(
                lambda m: m.group(1) + str(self.media_port(k, host_text, int(m.group(2)))).encode(), body)
        head = CONTENT_LENGTH.sub(lambda m: m.group(1) + str(len(body)).encode(), head)
        return head + separator + body

    def sip_frame(self, k: int, frame: Frame) -> bytes:
        """The frame with a rewritten SIP payload; IPv4/UDP lengths and IP checksum follow."""
        payload = self.sip_payload(k, frame.payload)
        data = bytearray(frame.data[:frame.udp_offset + 8])
        ip = frame.ip_offset
        struct.pack_into("!H", data, ip + 2, frame.udp_offset - ip + 8 + len(payload))
        struct.pack_into("!H", data, ip + 10, 0)
        struct.pack_into("!H", data, ip + 10, ip_checksum(bytes(data[ip:frame.udp_offset])))
        # UDP checksum 0 means "none" in IPv4; SIP's own ports are not media ports and stay.
        struct.pack_into("!HH", data, frame.udp_offset + 4, 8 + len(payload), 0)
        return bytes(data) + payload

    def media(self, k: int, start: float, stream: MediaStream) -> Iterator[tuple[float, bytes]]:
        """The stream repeated for call_seconds: RTP renumbered, arrival gaps as in the source."""
        frames = stream.frames
        first = frames[0]
        udp = first.udp_offset
        sport = self.media_port(k, *first.src)
        dport = self.media_port(k, *first.dst)
        period = frames[-1].time - first.time + stream.interval
        stream_start = start + first.time - self.origin
        media_end = start + self.template.media_start - self.origin + self.call_seconds
        if stream.is_rtp:
            sequence, timestamp, ssrc = struct.unpack_from("!HII", first.data, udp + 10)
            ssrc ^= k * 0x9E3779B1 & 0xFFFFFFFF  # distinct per call, still deterministic
            step = stream.timestamp_step
        for i in range(sys.maxsize):
            cycle, index = divmod(i, len(frames))
            frame = frames[index]
            when = stream_start + cycle * period + (frame.time - first.time)
            if when >= media_end:
                return
            data = bytearray(frame.data)
            struct.pack_into("!HH", data, udp, sport, dport)
            struct.pack_into("!H", data, udp + 6, 0)  # no UDP checksum (allowed in IPv4)
            if stream.is_rtp:
                struct.pack_into("!HII", data, udp + 10, (sequence + i) & 0xFFFF,
                                 (timestamp + i * step) & 0xFFFFFFFF, ssrc)
                if i:
                    data[udp + 9] &= 0x7F  # the marker bit belongs to the first packet of a talkspurt
            yield when, bytes(data)

    def call(self, k: int, start: float) -> Iterator[tuple[float, bytes]]:
        template = self.template
        opening = ((start + f.time - self.origin, self.sip_frame(k, f)) for f in template.opening)
        media_end = start + template.media_start - self.origin + self.call_seconds
        closing = ((media_end + f.time - template.media_end, self.sip_frame(k, f)) for f in template.closing)
        streams = [self.media(k, start, stream) for stream in template.streams]
        return heapq.merge(opening, *streams, closing, key=lambda record: record[0])


def interleaved_calls(count: int, start: float, stagger: float,
                      make_call: Callable[[int, float], Iterator[tuple[float, bytes]]]
                      ) -> Iterator[tuple[float, bytes]]:
    """All calls' packets in time order; a call is only started when its first packet is due."""
    pending: list[tuple[float, int, bytes, Iterator]] = []
    started = 0
    while pending or started < count:
        while started < count and (not pending or start + started * stagger <= pending[0][0]):
            packets = make_call(started, start + started * stagger)
            first = next(packets, None)
            if first:
                heapq.heappush(pending, (first[0], started, first[1], packets))
            started += 1
        when, k, data, packets = pending[0]
        yield when, data
        following = next(packets, None)
        if following:
            heapq.heapreplace(pending, (following[0], k, following[1], packets))
        else:
            heapq.heappop(pending)


class PcapWriter:
    """Classic pcap, microsecond timestamps, written record by record."""

    def __init__(self, path: Path, linktype: int):
        self.file = open(path, "wb", buffering=1 << 20)
        self.file.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, PCAP_SNAPLEN, linktype))
        self.packets = 0
        self.bytes = 24

    def write(self, when: float, data: bytes) -> None:
        seconds, micros = divmod(round(when * 1_000_000), 1_000_000)
        self.file.write(RECORD_HEADER.pack(seconds, micros, len(data), len(data)))
        self.file.write(data)
        self.packets += 1
        self.bytes += RECORD_HEADER.size + len(data)

    def close(self) -> None:
        self.file.close()


def read_source(path: Path) -> tuple[list[tuple[float, bytes]], int]:
    with open(path, "rb") as file:
        reader = dpkt.pcap.UniversalReader(file)
        return [(float(t), bytes(d)) for t, d in reader], reader.datalink()


def make_capture(source: Path, output: Path, packets: int | None, size: int | None,
                 call_seconds: float, concurrent: int) -> PcapWriter:
    records, linktype = read_source(source)
    cloner = CallCloner(read_template(records, linktype), call_seconds, concurrent)
    # A dry run of one call gives its exact packet count and size, so the call count hits the target.
    sample = list(cloner.call(0, 0.0))
    if packets is not None:
        calls = math.ceil(max(packets - len(records), 1) / len(sample))
    else:
        call_bytes = sum(RECORD_HEADER.size + len(d) for _, d in sample)
        source_bytes = sum(RECORD_HEADER.size + len(d) for _, d in records)
        calls = math.ceil(max(size - source_bytes, 1) / call_bytes)
    writer = PcapWriter(output, linktype)
    try:
        for when, data in records:
            writer.write(when, data)
        start = max(t for t, _ in records) + GAP_AFTER_SOURCE
        for when, data in interleaved_calls(calls, start, call_seconds / concurrent, cloner.call):
            writer.write(when, data)
    finally:
        writer.close()
    return writer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--packets", help="at least this many packets (e.g. 1M)")
    target.add_argument("--size", help="at least this many bytes (e.g. 100M, 1G)")
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE, help="a real Ethernet capture with a call")
    parser.add_argument("--call-seconds", type=float, default=60.0, help="media duration of each call")
    parser.add_argument("--concurrent", type=int, default=200, help="calls up at the same time")
    parser.add_argument("-o", "--output", type=Path, help="default: bench/out/SOURCE-TARGET.pcap")
    args = parser.parse_args(argv)
    output = args.output or default_path(args.source, args.packets, args.size)
    started = time.perf_counter()
    writer = make_capture(args.source, output, parse_amount(args.packets) if args.packets else None,
                          parse_amount(args.size) if args.size else None, args.call_seconds, args.concurrent)
    print(f"make_capture: wrote {output}: {writer.packets} packets, {writer.bytes / 1e6:.1f} MB "
          f"in {time.perf_counter() - started:.1f} s")
    return 0


def default_path(source: Path, packets: str | None, size: str | None) -> Path:
    """bench/out/SOURCE-100M.pcap (size) or bench/out/SOURCE-1Mp.pcap (packets)."""
    OUT.mkdir(parents=True, exist_ok=True)
    target = f"{packets}p" if packets else size
    return OUT / f"{source.stem}-{target}.pcap"


if __name__ == "__main__":
    sys.exit(main())
