#!/usr/bin/env python3
"""Build a large SIP-only capture from the lab's real signalling, like an SBC's signalling trace.

    python3 bench/make_signalling.py --size 100M             # -> bench/out/signalling-udp-100M.pcap
    python3 bench/make_signalling.py --size 16M --tcp        # -> bench/out/signalling-tcp-16M.pcap
    python3 bench/make_signalling.py --calls 10000 -o OUT.pcap

The scenarios are the SIP packets of the lab fixtures (tests/fixtures/calls and
tests/fixtures/registration: kamailio and SIPp talking, see their README), UDP
over Ethernet/IPv4, without their RTP, DNS or ICMP: SIP only. Copy k of a
scenario (the scenarios taken in turn) gets its own Call-ID, Via branches and
tags, and its own SDP media ports (so no two copies' SDP name the same
address, as on a real SBC), with Content-Length, IPv4 and UDP lengths and both
checksums fixed. Copies start `--stagger` seconds apart and keep their
scenario's own timing, so thousands of dialogs are open at once.

With `--tcp` the same messages travel back to back over TCP instead: one
connection per pair of hosts (joined mid-stream, as a capture started on a
busy SBC is), each direction's messages concatenated and cut into full
segments of `--mss` bytes, so most messages span two segments and most
segments carry the end of one message and the start of the next.

Deterministic (same arguments, same bytes), written as it is generated.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import struct
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from call_template import LINKTYPE_ETHERNET, Frame, looks_like_sip, udp_frame
from make_capture import (
    BRANCH_OR_TAG,
    CALL_ID_VALUE,
    CONTENT_LENGTH,
    OUT,
    RECORD_HEADER,
    PcapWriter,
    interleaved_calls,
    ip_checksum,
    parse_amount,
    read_source,
)

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures"
SOURCES = sorted((FIXTURES / "calls").glob("*.pcap")) + sorted((FIXTURES / "registration").glob("*.pcap"))
SDP_MEDIA_PORT = re.compile(rb"^(m=\w+ |a=rtcp:)(\d+)", re.MULTILINE)
# Copies' media ports: a block of 8 per copy from here up (RTP, RTCP for up to four m= lines).
PORT_FLOOR = 10000
PORT_BLOCK = 8
PORT_BLOCKS = (65536 - PORT_FLOOR) // PORT_BLOCK
IPPROTO_TCP = 6
TCP_ACK_PSH = 0x18


@dataclass
class Scenario:
    """The SIP packets of one fixture, times relative to its first."""

    name: str
    frames: list[Frame]
    times: list[float]


def read_scenarios(sources: list[Path]) -> list[Scenario]:
    """Each source's UDP/IPv4 SIP packets. Sources with none (IPv6, TCP) are left out, and so are those
    with IP fragments: a fragmented message would lose its first part and become another scenario."""
    scenarios = []
    for source in sources:
        records, linktype = read_source(source)
        if linktype != LINKTYPE_ETHERNET or any(is_ipv4_fragment(data) for _, data in records):
            continue
        frames = [frame for frame in (udp_frame(t, d) for t, d in records)
                  if frame is not None and looks_like_sip(frame.payload)]
        if frames:
            scenarios.append(Scenario(source.stem, frames, [f.time - frames[0].time for f in frames]))
    if not scenarios:
        raise SystemExit("make_signalling: no UDP/IPv4 SIP in the sources")
    return scenarios


def is_ipv4_fragment(data: bytes) -> bool:
    """An untagged Ethernet/IPv4 packet with more fragments to come or a fragment offset."""
    return data[12:14] == b"\x08\x00" and bool(struct.unpack_from("!H", data, 20)[0] & 0x3FFF)


def unique_payload(k: int, payload: bytes) -> bytes:
    """Copy k of a SIP message: its own Call-ID, branches, tags and SDP ports; Content-Length follows."""
    suffix = f"-{k:x}".encode()
    text = CALL_ID_VALUE.sub(lambda m: m.group(1) + f"{k:x}-".encode() + m.group(2), payload)
    text = BRANCH_OR_TAG.sub(lambda m: m.group(1) + m.group(2) + suffix, text)
    head, separator, body = text.partition(b"\r\n\r\n")
    if not body:
        return text
    ports: dict[bytes, int] = {}  # the source's ports in order of appearance -> the copy's

    def port(match: re.Match) -> bytes:
        original = match.group(2)
        if original != b"0":  # port 0 refuses a stream: it stays 0
            base = PORT_FLOOR + (k % PORT_BLOCKS) * PORT_BLOCK
            ports.setdefault(original, base + min(len(ports), PORT_BLOCK - 1))
            original = str(ports[original]).encode()
        return match.group(1) + original

    body = SDP_MEDIA_PORT.sub(port, body)
    head = CONTENT_LENGTH.sub(lambda m: m.group(1) + str(len(body)).encode(), head)
    return head + separator + body


def transport_checksum(src: bytes, dst: bytes, protocol: int, segment: bytes) -> int:
    """UDP/TCP checksum over the IPv4 pseudo-header and the segment (checksum field zeroed)."""
    pseudo = src + dst + struct.pack("!BBH", 0, protocol, len(segment))
    data = pseudo + segment + (b"\0" if len(segment) % 2 else b"")
    checksum = ip_checksum(data)
    if protocol == 17 and checksum == 0:
        return 0xFFFF  # UDP sends a computed 0 as all ones: 0 means "no checksum"
    return checksum


def ipv4_packet(link: bytes, ip_header: bytes, protocol: int, transport: bytes) -> bytes:
    """Ethernet header + IPv4 header (length, protocol and checksum set) + the transport segment."""
    header = bytearray(ip_header)
    struct.pack_into("!H", header, 2, len(header) + len(transport))
    header[9] = protocol
    struct.pack_into("!H", header, 10, 0)
    struct.pack_into("!H", header, 10, ip_checksum(bytes(header)))
    return link + bytes(header) + transport


def udp_copy(frame: Frame, payload: bytes) -> bytes:
    data = frame.data
    ip_header = data[frame.ip_offset:frame.udp_offset]
    sport, dport = struct.unpack_from("!HH", data, frame.udp_offset)
    segment = bytearray(struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload)
    struct.pack_into("!H", segment, 6, transport_checksum(ip_header[12:16], ip_header[16:20], 17, bytes(segment)))
    return ipv4_packet(data[:frame.ip_offset], ip_header, 17, bytes(segment))


class SignallingCopies:
    """Copy k of scenario k mod n, as (time, frame bytes) in time order."""

    def __init__(self, scenarios: list[Scenario]):
        self.scenarios = scenarios

    def scenario(self, k: int) -> Scenario:
        return self.scenarios[k % len(self.scenarios)]

    def messages(self, k: int, start: float) -> Iterator[tuple[float, Frame, bytes]]:
        scenario = self.scenario(k)
        for when, frame in zip(scenario.times, scenario.frames):
            yield start + when, frame, unique_payload(k, frame.payload)

    def udp(self, k: int, start: float) -> Iterator[tuple[float, bytes]]:
        for when, frame, payload in self.messages(k, start):
            yield when, udp_copy(frame, payload)


class TcpConnections:
    """Messages written back to back into per-direction TCP streams, cut into full segments."""

    def __init__(self, mss: int):
        self.mss = mss
        self.pending: dict[tuple, bytearray] = {}  # direction -> bytes not yet sent
        self.sequence: dict[tuple, int] = {}
        self.template: dict[tuple, Frame] = {}  # a packet of the direction, for its link and IP headers

    def add(self, when: float, frame: Frame, payload: bytes) -> Iterator[tuple[float, bytes]]:
        direction = (frame.src, frame.dst)
        self.template.setdefault(direction, frame)
        buffer = self.pending.setdefault(direction, bytearray())
        buffer += payload
        while len(buffer) >= self.mss:
            yield when, self.segment(direction, bytes(buffer[:self.mss]))
            del buffer[:self.mss]

    def flush(self, when: float) -> Iterator[tuple[float, bytes]]:
        for direction, buffer in self.pending.items():
            if buffer:
                yield when, self.segment(direction, bytes(buffer))
                buffer.clear()

    def segment(self, direction: tuple, payload: bytes) -> bytes:
        frame = self.template[direction]
        (_, sport), (_, dport) = direction
        # Both directions' initial sequence numbers are fixed: the capture joins the connection mid-stream.
        seq = self.sequence.get(direction, 1000 if sport < dport else 500000)
        self.sequence[direction] = (seq + len(payload)) & 0xFFFFFFFF
        ip_header = frame.data[frame.ip_offset:frame.udp_offset]
        header = bytearray(struct.pack("!HHIIBBHHH", sport, dport, seq, 1, 5 << 4, TCP_ACK_PSH, 65535, 0, 0))
        segment = bytes(header) + payload
        struct.pack_into("!H", header, 16, transport_checksum(ip_header[12:16], ip_header[16:20], IPPROTO_TCP,
                                                             segment))
        return ipv4_packet(frame.data[:frame.ip_offset], ip_header, IPPROTO_TCP, bytes(header) + payload)


# Ethernet, IPv4 and TCP headers (no options) of each segment --tcp writes.
TCP_FRAME_HEADERS = 14 + 20 + 20


def copies_for(copies: SignallingCopies, size: int | None, calls: int | None, tcp: bool, mss: int) -> int:
    """The copies that make `size` bytes: each scenario once gives the bytes of a round."""
    if calls is not None:
        return calls
    scenarios = range(len(copies.scenarios))
    if tcp:  # the messages back to back, each full segment with its record and frame headers
        payload = sum(len(payload) for k in scenarios for _, _, payload in copies.messages(k, 0.0))
        round_bytes = payload * (mss + RECORD_HEADER.size + TCP_FRAME_HEADERS) / mss
    else:
        round_bytes = sum(RECORD_HEADER.size + len(data) for k in scenarios for _, data in copies.udp(k, 0.0))
    return math.ceil(size * len(copies.scenarios) / round_bytes)


def make_signalling(output: Path, size: int | None, calls: int | None, stagger: float, tcp: bool,
                    mss: int) -> tuple[PcapWriter, int, int]:
    copies = SignallingCopies(read_scenarios(SOURCES))
    count = copies_for(copies, size, calls, tcp, mss)
    writer = PcapWriter(output, LINKTYPE_ETHERNET)
    messages = 0
    try:
        if not tcp:
            for when, data in interleaved_calls(count, 0.0, stagger, copies.udp):
                writer.write(when, data)
                messages += 1
            return writer, messages, count
        connections = TcpConnections(mss)
        last = 0.0

        def as_one(k: int, start: float) -> Iterator[tuple[float, tuple[Frame, bytes]]]:
            return ((when, (frame, payload)) for when, frame, payload in copies.messages(k, start))

        for last, (frame, payload) in interleaved_calls(count, 0.0, stagger, as_one):
            messages += 1
            for when, data in connections.add(last, frame, payload):
                writer.write(when, data)
        for when, data in connections.flush(last):
            writer.write(when, data)
    finally:
        writer.close()
    return writer, messages, count


def counts_path(capture: Path) -> Path:
    return capture.with_name(capture.name + ".counts.json")


def write_counts(capture: Path, messages: int, copies: int) -> None:
    """What the capture holds by construction, beside it: the benchmark divides by these."""
    counts_path(capture).write_text(json.dumps({"sip_messages": messages, "copies": copies}) + "\n")


def read_counts(capture: Path) -> dict:
    return json.loads(counts_path(capture).read_text())


def default_path(size: str | None, calls: str | None, tcp: bool) -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    target = size or f"{calls}calls"
    return OUT / f"signalling-{'tcp' if tcp else 'udp'}-{target}.pcap"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--size", help="at least this many bytes (e.g. 100M, 1G)")
    target.add_argument("--calls", help="this many scenario copies (calls and registrations, e.g. 10K)")
    parser.add_argument("--stagger", type=float, default=0.01, help="seconds between the starts of two copies")
    parser.add_argument("--tcp", action="store_true", help="back to back over TCP instead of one message per datagram")
    parser.add_argument("--mss", type=int, default=1448, help="TCP segment payload size (with --tcp)")
    parser.add_argument("-o", "--output", type=Path, help="default: bench/out/signalling-udp|tcp-TARGET.pcap")
    args = parser.parse_args(argv)
    output = args.output or default_path(args.size, args.calls, args.tcp)
    started = time.perf_counter()
    writer, messages, count = make_signalling(output, parse_amount(args.size) if args.size else None,
                                       parse_amount(args.calls) if args.calls else None, args.stagger,
                                       args.tcp, args.mss)
    write_counts(output, messages, count)
    print(f"make_signalling: wrote {output}: {messages} SIP messages in {writer.packets} packets, "
          f"{writer.bytes / 1e6:.1f} MB in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
