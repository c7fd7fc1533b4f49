"""DNS message parsing (RFC 1035 and the record types SIP location uses, RFC 3263).

A small struct parser of our own: it never raises, protects against
compression-pointer loops, and gives record data in presentation form so the
diagnosis can print and follow NAPTR -> SRV -> A/AAAA chains.
"""

from __future__ import annotations

import ipaddress
import struct

from ..model import DnsMessage, DnsRecord

# Names as tshark prints them for dns.qry.type.
TYPE_NAMES = {
    1: "A", 2: "NS", 5: "CNAME", 6: "SOA", 12: "PTR", 13: "HINFO", 15: "MX", 16: "TXT",
    28: "AAAA", 33: "SRV", 35: "NAPTR", 39: "DNAME", 41: "OPT", 43: "DS", 46: "RRSIG",
    47: "NSEC", 48: "DNSKEY", 50: "NSEC3", 64: "SVCB", 65: "HTTPS", 99: "SPF",
    251: "IXFR", 252: "AXFR", 255: "ANY", 257: "CAA",
}

RCODE_NAMES = {
    0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED",
    6: "YXDOMAIN", 7: "YXRRSET", 8: "NXRRSET", 9: "NOTAUTH", 10: "NOTZONE",
}

_HEADER = struct.Struct("!HHHHHH")
_QUESTION_TAIL = struct.Struct("!HH")
_RECORD_TAIL = struct.Struct("!HHIH")
_SRV = struct.Struct("!HHH")
_SOA_TAIL = struct.Struct("!IIIII")
# More labels than a 255-byte name can hold means a pointer loop or garbage.
_MAX_LABELS = 128
# Opcodes 0-6 are assigned (QUERY ... DSO); anything else is not DNS.
_MAX_OPCODE = 6


class _Malformed(Exception):
    """Internal: the message ends or loops where a field was expected."""


def type_name(rtype: int) -> str:
    return TYPE_NAMES.get(rtype, f"TYPE{rtype}")


def _read_name(data: bytes, offset: int) -> tuple[str, int]:
    """(name without trailing dot, offset after the name in the original position)."""
    labels: list[str] = []
    end_offset = -1
    for _ in range(_MAX_LABELS):
        if offset >= len(data):
            raise _Malformed
        length = data[offset]
        if length == 0:
            return ".".join(labels), (offset + 1 if end_offset < 0 else end_offset)
        if length & 0xC0 == 0xC0:
            if offset + 1 >= len(data):
                raise _Malformed
            if end_offset < 0:
                end_offset = offset + 2
            offset = ((length & 0x3F) << 8) | data[offset + 1]
            continue
        if length & 0xC0:
            raise _Malformed  # extended label types (RFC 6891) are not in use
        label = data[offset + 1 : offset + 1 + length]
        if len(label) < length:
            raise _Malformed
        labels.append(label.decode("ascii", "backslashreplace"))
        offset += 1 + length
    raise _Malformed


def _presentation_name(data: bytes, offset: int) -> str:
    name, _ = _read_name(data, offset)
    return name + "." if name else "."


def _character_strings(rdata: bytes) -> list[str]:
    strings = []
    offset = 0
    while offset < len(rdata):
        length = rdata[offset]
        strings.append(rdata[offset + 1 : offset + 1 + length].decode("utf-8", "backslashreplace"))
        offset += 1 + length
    return strings


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _naptr(data: bytes, start: int, end: int) -> str:
    if end - start < 4:
        raise _Malformed
    order, preference = struct.unpack_from("!HH", data, start)
    offset = start + 4
    texts = []
    for _ in range(3):  # flags, service, regexp
        if offset >= end:
            raise _Malformed
        length = data[offset]
        texts.append(data[offset + 1 : offset + 1 + length].decode("utf-8", "backslashreplace"))
        offset += 1 + length
    replacement = _presentation_name(data, offset)
    return f"{order} {preference} " + " ".join(map(_quoted, texts)) + f" {replacement}"


def _record_data(data: bytes, rtype: int, start: int, end: int) -> str:
    """Presentation form of RDATA; names may point anywhere in the message."""
    rdata = data[start:end]
    if rtype == 1 and len(rdata) == 4:
        return str(ipaddress.IPv4Address(rdata))
    if rtype == 28 and len(rdata) == 16:
        return str(ipaddress.IPv6Address(rdata))
    if rtype in (2, 5, 12, 39):  # NS, CNAME, PTR, DNAME
        return _presentation_name(data, start)
    if rtype == 33 and len(rdata) >= 7:
        priority, weight, port = _SRV.unpack_from(data, start)
        return f"{priority} {weight} {port} {_presentation_name(data, start + 6)}"
    if rtype == 35:
        return _naptr(data, start, end)
    if rtype == 15 and len(rdata) >= 3:
        return f"{struct.unpack_from('!H', data, start)[0]} {_presentation_name(data, start + 2)}"
    if rtype == 16:
        return " ".join(map(_quoted, _character_strings(rdata)))
    if rtype == 6:
        mname, offset = _read_name(data, start)
        rname, offset = _read_name(data, offset)
        if offset + _SOA_TAIL.size > end:
            raise _Malformed
        numbers = " ".join(map(str, _SOA_TAIL.unpack_from(data, offset)))
        return f"{mname or ''}. {rname or ''}. {numbers}"
    # Unknown or odd-sized data: the generic form of RFC 3597.
    return f"\\# {len(rdata)} {rdata.hex()}".rstrip()


def _read_records(data: bytes, offset: int, count: int, into: list[DnsRecord]) -> int:
    for _ in range(count):
        name, offset = _read_name(data, offset)
        if offset + _RECORD_TAIL.size > len(data):
            raise _Malformed
        rtype, _class, ttl, length = _RECORD_TAIL.unpack_from(data, offset)
        start = offset + _RECORD_TAIL.size
        end = start + length
        if end > len(data):
            raise _Malformed
        into.append(DnsRecord(name=name, rtype=type_name(rtype), ttl=ttl, data=_record_data(data, rtype, start, end)))
        offset = end
    return offset


def parse_dns(payload: bytes) -> DnsMessage | None:
    """Parse a DNS message; None when it is not DNS at all.

    A message cut short after its question keeps the records read so far:
    the query and rcode still matter to the diagnosis.
    """
    data = bytes(payload)
    if len(data) < _HEADER.size:
        return None
    ident, flags, qdcount, ancount, nscount, arcount = _HEADER.unpack_from(data)
    opcode = (flags >> 11) & 0xF
    if opcode > _MAX_OPCODE:
        return None
    qname = qtype = None
    offset = _HEADER.size
    try:
        for index in range(qdcount):
            name, offset = _read_name(data, offset)
            if offset + _QUESTION_TAIL.size > len(data):
                raise _Malformed
            if index == 0:
                qname, qtype = name, type_name(_QUESTION_TAIL.unpack_from(data, offset)[0])
            offset += _QUESTION_TAIL.size
    except _Malformed:
        return None
    message = DnsMessage(
        frame=0, time=0.0, src_ip="", src_port=0, dst_ip="", dst_port=0, transport="udp",
        id=ident, is_response=bool(flags & 0x8000), opcode=opcode, rcode=flags & 0xF,
        qname=qname, qtype=qtype,
    )
    try:
        offset = _read_records(data, offset, ancount, message.answers)
        offset = _read_records(data, offset, nscount, message.authority)
        _read_records(data, offset, arcount, message.additional)
    except (_Malformed, ValueError, struct.error):
        pass  # truncated record sections: keep what was read
    return message


class DnsStreamFramer:
    """DNS over TCP (RFC 1035 4.2.2 / RFC 7766): 2-byte length prefix; sans-I/O."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        self._buffer += data
        messages = []
        while len(self._buffer) >= 2:
            length = (self._buffer[0] << 8) | self._buffer[1]
            if len(self._buffer) < 2 + length:
                break
            messages.append(bytes(self._buffer[2 : 2 + length]))
            del self._buffer[: 2 + length]
        return messages
