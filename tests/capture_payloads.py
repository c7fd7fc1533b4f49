"""Test helper: UDP payloads of a real capture with Wireshark frame numbers (via dpkt).

Only plain link layers (Ethernet, Linux cooked, raw IP) are decoded: enough to
take real SIP and DNS messages out of the shared captures for parser tests,
independently of the engine's own packet layer.
"""

from __future__ import annotations

from pathlib import Path

import dpkt


def _ip_layer(linktype: int, data: bytes):
    if linktype == dpkt.pcap.DLT_EN10MB:
        return dpkt.ethernet.Ethernet(data).data
    if linktype == dpkt.pcap.DLT_LINUX_SLL:
        return dpkt.sll.SLL(data).data
    if linktype in (dpkt.pcap.DLT_RAW, 101, 228):
        return dpkt.ip.IP(data) if data[0] >> 4 == 4 else dpkt.ip6.IP6(data)
    return None


def _is_fragment(ip) -> bool:
    if isinstance(ip, dpkt.ip.IP):
        return bool(ip.mf or ip.offset)
    return 44 in getattr(ip, "extension_hdrs", {})  # IPv6 Fragment header


def udp_payloads(path: Path) -> list[tuple[int, int, int, bytes]]:
    """(frame, source port, destination port, payload) for every unfragmented UDP packet."""
    with open(path, "rb") as handle:
        magic = handle.read(4)
        handle.seek(0)
        reader = dpkt.pcapng.Reader(handle) if magic == b"\x0a\x0d\x0d\x0a" else dpkt.pcap.Reader(handle)
        linktype = reader.datalink()
        found = []
        for frame, (_, data) in enumerate(reader, start=1):
            try:
                ip = _ip_layer(linktype, data)
            except (dpkt.UnpackError, IndexError):
                continue
            udp = getattr(ip, "data", None)
            if isinstance(udp, dpkt.udp.UDP) and not _is_fragment(ip):
                found.append((frame, udp.sport, udp.dport, bytes(udp.data)))
    return found


def tcp_segments(path: Path) -> list[tuple[int, tuple, int, bytes]]:
    """(frame, (src, sport, dst, dport), seq, payload) of every TCP segment with data (Ethernet pcap)."""
    with open(path, "rb") as handle:
        segments = []
        for frame, (_, data) in enumerate(dpkt.pcap.Reader(handle), start=1):
            ip = dpkt.ethernet.Ethernet(data).data
            tcp = getattr(ip, "data", None)
            if isinstance(tcp, dpkt.tcp.TCP) and tcp.data:
                segments.append((frame, (ip.src, tcp.sport, ip.dst, tcp.dport), tcp.seq, bytes(tcp.data)))
    return segments
