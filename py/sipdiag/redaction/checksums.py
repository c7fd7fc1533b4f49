"""Internet checksums (RFC 1071) for rewritten IPv4, UDP, TCP and ICMP headers.

Redaction changes addresses and payloads, so every checksum that covers them
must be computed again; an invalid checksum would make Wireshark flag the
packet and would hint at what was changed.
"""

from __future__ import annotations

import array
import sys

_SWAP = sys.byteorder == "little"


def internet_checksum(data: bytes) -> int:
    """The one's complement of the one's complement sum of 16-bit words."""
    if len(data) % 2:
        data += b"\0"
    words = array.array("H", data)
    if _SWAP:
        words.byteswap()
    total = sum(words)
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ipv4_pseudo_header(src: bytes, dst: bytes, protocol: int, length: int) -> bytes:
    return src + dst + bytes((0, protocol)) + length.to_bytes(2, "big")


def ipv6_pseudo_header(src: bytes, dst: bytes, protocol: int, length: int) -> bytes:
    return src + dst + length.to_bytes(4, "big") + bytes((0, 0, 0, protocol))


def transport_checksum(pseudo_header: bytes, segment: bytes, udp: bool) -> int:
    """Checksum of a UDP/TCP/ICMPv6 segment whose checksum field holds zero."""
    value = internet_checksum(pseudo_header + segment)
    # In UDP a computed zero is sent as all ones: zero means "no checksum".
    return 0xFFFF if udp and value == 0 else value


def _sum16(data: bytes) -> int:
    return (~internet_checksum(data)) & 0xFFFF


def adjusted_checksum(checksum: int, removed: bytes, added: bytes) -> int:
    """A checksum after `removed` bytes became `added` (RFC 1624, eqn. 3).

    For headers quoted by ICMP errors, where the rest of the covered segment
    is not in the capture: only what changed is needed. Both sides must start
    at the same 16-bit alignment and have the same length.
    """
    total = (~checksum & 0xFFFF) + (~_sum16(removed) & 0xFFFF) + _sum16(added)
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF
