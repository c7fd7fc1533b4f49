"""Build a large RTP-heavy capture for benchmarks from a real small one.

Every packet of the source capture is written once, then its RTP/RTCP packets
(UDP, first payload byte 0x80..0xBF) are repeated with their times shifted by
the source's duration per round, until the target packet count is reached.
The result is a plain little-endian microsecond pcap.

    python3 bench/make_rtp_capture.py OUT.pcap [--packets N] [--source CAPTURE]
"""

from __future__ import annotations

import argparse
import struct
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "py"))

from sipdiag.capture import CaptureReader  # noqa: E402

DEFAULT_SOURCE = Path(__file__).resolve().parent.parent.parent / "shared" / "captures" / "heplify__rtp_rtcp_sip_ipv4_udp.pcap"


def is_rtp_over_ipv4_ethernet(packet: bytes) -> bool:
    if len(packet) < 43 or packet[12:14] != b"\x08\x00" or packet[23] != 17:
        return False
    payload = 14 + (packet[14] & 0x0F) * 4 + 8
    return len(packet) > payload and 0x80 <= packet[payload] < 0xC0


def read_packets(path: Path) -> tuple[int, list[tuple[float, bytes]]]:
    reader = CaptureReader()
    records = reader.feed(path.read_bytes())
    reader.close()
    linktypes = {linktype for _frame, _time, linktype, _data in records}
    if linktypes != {1}:
        raise SystemExit(f"{path}: need an Ethernet capture, got link types {sorted(linktypes)}")
    return 1, [(time, data) for _frame, time, _linktype, data in records]


def record(time: float, data: bytes) -> bytes:
    seconds = int(time)
    return struct.pack("<IIII", seconds, int(round((time - seconds) * 1e6)), len(data), len(data)) + data


def write_capture(out: Path, source: Path, packets: int) -> int:
    linktype, originals = read_packets(source)
    rtp = [(time, data) for time, data in originals if is_rtp_over_ipv4_ethernet(data)]
    start, end = originals[0][0], originals[-1][0]
    period = end - start + 1.0
    written = 0
    with out.open("wb") as output:
        output.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype))
        for time, data in originals:
            output.write(record(time, data))
        written = len(originals)
        round_number = 1
        while written < packets:
            shift = period * round_number
            for time, data in rtp[: packets - written]:
                output.write(record(time + shift, data))
            written += min(len(rtp), packets - written)
            round_number += 1
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path)
    parser.add_argument("--packets", type=int, default=1_000_000)
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    args = parser.parse_args()
    count = write_capture(args.output, args.source, args.packets)
    print(f"{args.output}: {count} packets, {args.output.stat().st_size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
