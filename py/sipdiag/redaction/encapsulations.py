"""Pure helpers for the encapsulations and LAN protocols `packets` rewrites:
checksums of their own (CRC32c, CDP's, STUN's fingerprint), NetBIOS name
encoding, EUI-64 interface identifiers, and fields found by walking a header
(NFLOG byte order, radiotap flags). No state, no redaction policy.
"""

from __future__ import annotations

import struct
import zlib


def _crc32c_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)  # Castagnoli, reflected
        table.append(crc)
    return tuple(table)


CRC32C_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (RFC 9260 appendix B), table-driven: zlib only has the IEEE polynomial."""
    crc = 0xFFFFFFFF
    table = CRC32C_TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def sctp_checksum(packet: bytes) -> bytes:
    """The 4 checksum bytes of an SCTP packet (its own checksum field counted as zero).

    The CRC goes on the wire least significant byte first, as the kernel
    writes it (`cpu_to_le32`) and Wireshark reads it."""
    return crc32c(packet[:8] + b"\0\0\0\0" + packet[12:]).to_bytes(4, "little")


def cdp_checksum(pdu: bytes) -> int:
    """CDP's checksum: RFC 1071, except for an odd last byte, which Cisco adds
    as a sign-extended word instead of padding it (and Wireshark checks it so)."""
    even = len(pdu) & ~1
    total = sum(struct.unpack(f"!{even // 2}H", pdu[:even]))
    if len(pdu) & 1:
        last = pdu[-1]
        total += ((last - 1) | 0xFF00) if last & 0x80 else last
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def stun_fingerprint(message_before: bytes) -> bytes:
    """FINGERPRINT's value (RFC 8489 14.7): CRC-32 of the message up to the attribute, XOR "STUN"."""
    return ((zlib.crc32(message_before) ^ 0x5354554E) & 0xFFFFFFFF).to_bytes(4, "big")


def ieee80211_fcs(frame: bytes) -> bytes:
    """The 802.11 frame check sequence as captured after the frame: CRC-32, little-endian."""
    return zlib.crc32(frame).to_bytes(4, "little")


def netbios_decode(encoded: bytes) -> bytes | None:
    """RFC 1001 first-level decoding: 32 letters 'A'-'P', one per half byte, to the 16-byte name."""
    if len(encoded) != 32 or any(not 0x41 <= c <= 0x50 for c in encoded):
        return None
    return bytes(((encoded[i] - 0x41) << 4) | (encoded[i + 1] - 0x41) for i in range(0, 32, 2))


def netbios_encode(name: bytes) -> bytes:
    return bytes(0x41 + (byte >> shift & 0x0F) for byte in name for shift in (4, 0))


def is_eui64_address(packed: bytes) -> bool:
    """An IPv6 address whose interface identifier SLAAC derived from a MAC (ff:fe in its middle).

    Multicast groups and addresses under ::/64 (IPv4-mapped ::ffff:254.x.y.z
    has those bytes too) are not SLAAC addresses."""
    return (len(packed) == 16 and packed[11:13] == b"\xff\xfe" and packed[0] != 0xFF
            and packed[:8] != bytes(8))


def mac_of_interface_id(interface_id: bytes) -> bytes:
    """The MAC a modified EUI-64 interface identifier was made from (RFC 4291 appendix A)."""
    return bytes((interface_id[0] ^ 0x02,)) + interface_id[1:3] + interface_id[5:8]


def interface_id_of_mac(mac: bytes) -> bytes:
    return bytes((mac[0] ^ 0x02,)) + mac[1:3] + b"\xff\xfe" + mac[3:6]


def nflog_byte_order(data: bytes) -> str:
    """NFLOG TLV lengths are in the capturing host's byte order: little-endian
    unless only the big-endian reading of the first length fits the packet."""
    if len(data) < 8:
        return "<"
    little, big = struct.unpack_from("<H", data, 4)[0], struct.unpack_from(">H", data, 4)[0]
    limit = len(data) - 4
    return ">" if 4 <= big <= limit and not 4 <= little <= limit else "<"


def radiotap_flags(header: bytes) -> int:
    """The Flags field of a radiotap header, 0 when absent.

    Fields follow the presence words in bit order, each aligned to its size;
    only TSFT (bit 0, 8 bytes) can come before Flags (bit 1)."""
    present = struct.unpack_from("<I", header, 4)[0]
    pos, word = 8, present
    while word & 0x80000000 and pos + 4 <= len(header):
        word = struct.unpack_from("<I", header, pos)[0]
        pos += 4
    if not present & 0x02:
        return 0
    if present & 0x01:
        pos = (pos + 7) & ~7
        pos += 8
    return header[pos] if pos < len(header) else 0
