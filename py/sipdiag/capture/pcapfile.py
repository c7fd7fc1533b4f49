"""Reading and writing pcap and pcapng captures, streaming and sans-I/O.

`CaptureReader.feed(chunk)` takes the file in pieces of any size (the page
feeds slices of a `File`, the CLI reads 1 MiB at a time), so memory stays flat
whatever the file's size. Packets come out as plain tuples because the engine
handles millions of them; redaction asks for whole `Block`s instead, which can
be changed and written back with `Block.encode()`.

Unlike dpkt's pcapng reader, every Interface Description Block keeps its own
link type and timestamp resolution, and later sections are read too.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

PCAP_MAGICS = {
    # first four bytes -> (struct byte order, timestamp fraction scale)
    b"\xd4\xc3\xb2\xa1": ("<", 1e-6),
    b"\xa1\xb2\xc3\xd4": (">", 1e-6),
    b"\x4d\x3c\xb2\xa1": ("<", 1e-9),
    b"\xa1\xb2\x3c\x4d": (">", 1e-9),
}
PCAPNG_SHB = b"\x0a\x0d\x0d\x0a"
GZIP_MAGIC = b"\x1f\x8b"

# pcapng block types
SECTION_HEADER = 0x0A0D0D0A
INTERFACE_DESCRIPTION = 1
OBSOLETE_PACKET = 2
SIMPLE_PACKET = 3
ENHANCED_PACKET = 6
PACKET_BLOCK_TYPES = (ENHANCED_PACKET, SIMPLE_PACKET, OBSOLETE_PACKET)
# Blocks whose body ends in an options list, and where in the body it starts.
OPTIONS_OFFSET = {SECTION_HEADER: 16, INTERFACE_DESCRIPTION: 8, 5: 12}  # 5: statistics

OPT_END, OPT_COMMENT = 0, 1
IF_TSRESOL, IF_TSOFFSET = 9, 14

# The most a capture tool gives one packet of a link type that can carry SIP
# (libpcap's and Wireshark's maximum snap length; only D-Bus and USB get more).
MAX_SNAPLEN = 262144
# A record up to this size is read whole, however unusual: jumbo frames,
# offloaded TCP super-segments or a writer with its own limits give packets
# past MAX_SNAPLEN, and one record this size still bounds the reader's memory.
# A record claiming more cannot be a packet the engine decodes: its length is
# taken as damage, and reading stops there rather than wait for gigabytes.
MAX_RECORD = 64 * 1024 * 1024
# ECMAScript dates (the page's) reach 100,000,000 days either side of 1970,
# beyond any other calendar's: a time outside this cannot be shown as a date.
MAX_DATE_SECONDS = 8.64e12

SIGNATURES = (
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"\x89PNG", "a PNG image"),
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive (or an Office document)"),
    (b"\xfd7zXZ", "xz-compressed data (decompress it first)"),
    (b"BZh", "bzip2-compressed data (decompress it first)"),
    (b"GIF8", "a GIF image"),
    (b"<", "text or HTML"),
    (b"{", "text or JSON"),
)


class CaptureError(Exception):
    """The input is not a capture at all; the message is shown to the user."""


def describe_non_capture(head: bytes) -> str:
    for signature, what in SIGNATURES:
        if head.startswith(signature):
            return f"This is not a pcap or pcapng capture: it looks like {what}."
    return "This is not a pcap or pcapng capture: its first bytes match neither format."


@dataclass
class Block:
    """One block (pcapng) or record (pcap) of a capture, for rewriting.

    `encode()` gives the original bytes back until `replace()` changes
    something, so untouched blocks survive byte for byte.
    """

    raw: bytes
    kind: str  # "pcap-header", "packet", "block" (any non-packet pcapng block)
    endian: str  # "<" or ">"
    block_type: int | None = None  # pcapng block type; None for pcap
    frame: int = 0  # packets only, 1-based over the whole file
    time: float = 0.0
    linktype: int | None = None
    interface: int = 0
    data: bytes | None = None  # packet bytes as captured
    orig_len: int = 0
    options: list[tuple[int, bytes]] | None = None  # pcapng options, in order
    changed: bool = field(default=False, repr=False)

    def replace(self, *, data: bytes | None = None, options: list[tuple[int, bytes]] | None = None) -> None:
        if data is not None:
            # The wire length grows or shrinks with the captured bytes: a
            # snaplen-cut packet stays cut by the same amount.
            self.orig_len += len(data) - len(self.data or b"")
            self.data = data
        if options is not None:
            self.options = options
        self.changed = True

    def encode(self) -> bytes:
        if not self.changed:
            return self.raw
        e = self.endian
        if self.kind == "packet" and self.block_type is None:
            sec, frac = struct.unpack_from(e + "II", self.raw)
            return struct.pack(e + "IIII", sec, frac, len(self.data), self.orig_len) + self.data
        if self.kind == "packet":
            fixed = self.raw[8:]
            if self.block_type == ENHANCED_PACKET:
                head = fixed[:12] + struct.pack(e + "II", len(self.data), self.orig_len)
            elif self.block_type == OBSOLETE_PACKET:
                head = fixed[:12] + struct.pack(e + "II", len(self.data), self.orig_len)
            else:  # simple packet block: original length only
                head = struct.pack(e + "I", self.orig_len)
            body = head + _pad(self.data)
            if self.block_type != SIMPLE_PACKET:
                body += encode_options(self.options or [], e)
            return _frame_block(self.block_type, body, e)
        start = OPTIONS_OFFSET.get(self.block_type)
        if start is None or self.options is None:
            return self.raw
        body = self.raw[8 : 8 + start] + encode_options(self.options, e)
        return _frame_block(self.block_type, body, e)


def _pad(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 4)


def _frame_block(block_type: int, body: bytes, endian: str) -> bytes:
    total = len(body) + 12
    return struct.pack(endian + "II", block_type, total) + body + struct.pack(endian + "I", total)


def encode_options(options: list[tuple[int, bytes]], endian: str) -> bytes:
    if not options:
        return b""
    out = b"".join(struct.pack(endian + "HH", code, len(value)) + _pad(value) for code, value in options)
    return out + struct.pack(endian + "HH", OPT_END, 0)


def parse_options(body: bytes, start: int, endian: str) -> list[tuple[int, bytes]]:
    """Options from `start` to the end of a block body; stops at opt_endofopt or damage."""
    options = []
    pos, end = start, len(body)
    header = struct.Struct(endian + "HH")
    while pos + 4 <= end:
        code, length = header.unpack_from(body, pos)
        if code == OPT_END or pos + 4 + length > end:
            break
        options.append((code, body[pos + 4 : pos + 4 + length]))
        pos += 4 + length + (-length % 4)
    return options


def timestamp_scale(options: list[tuple[int, bytes]], endian: str) -> tuple[float, float]:
    """(seconds per tick, offset in seconds) from an IDB's if_tsresol/if_tsoffset."""
    scale, offset = 1e-6, 0.0
    for code, value in options:
        if code == IF_TSRESOL and value:
            resolution = value[0]
            scale = 2.0 ** -(resolution & 0x7F) if resolution & 0x80 else 10.0**-resolution
        elif code == IF_TSOFFSET and len(value) == 8:
            offset = float(struct.unpack(endian + "q", value)[0])
    return scale, offset


@dataclass
class Interface:
    linktype: int
    scale: float
    offset: float


class CaptureReader:
    """Sans-I/O capture reader: `feed()` bytes, get packets (or blocks) back.

    packets: `feed()` returns `(frame, time, linktype, packet_bytes)` tuples.
    blocks=True: `feed()` returns every `Block` of the file, headers included.
    offsets=True: `record_offsets` then lists, for the packets the last `feed()`
    returned, where each one's bytes start in the (inflated) file, so a packet's
    bytes can be read back from the file later instead of being kept.
    """

    def __init__(self, *, blocks: bool = False, offsets: bool = False) -> None:
        self.blocks = blocks
        self.record_offsets: list[int] | None = [] if offsets else None
        self._buffer_offset = 0  # where the buffer `_records` reads starts in the (inflated) file
        self._block_offset = 0  # pcapng: where the block being read starts
        self.format: str | None = None
        self.warnings: list[str] = []
        self.link_types: set[int] = set()
        self.packets = 0
        self.bytes_read = 0
        self._pending = b""
        # Once the record at the start of `_pending` is known to be long, the
        # chunks that bring it wait here and are joined once, when it is whole:
        # a large record then costs one copy, not one per chunk.
        self._needed = 0
        self._gathered: list[bytes] = []
        self._gathered_size = 0
        self._stopped = False  # after damage we cannot resynchronise past
        self._cut_packets = 0
        self._cut_example = 0
        self._out_of_range = 0
        self._out_of_range_example: tuple[int, float, Interface] | None = None
        # pcap state
        self._header_read = False
        self._endian = "<"
        self._pcap_scale = 1e-6
        self._pcap_linktype = 0
        # pcapng state
        self._interfaces: list[Interface] = []
        self._missing_interface = 0
        # gzip: decided on the file's first two bytes, then every chunk is inflated as it comes
        self._start: bytes | None = b""  # None once decided
        self._inflate = None
        self.compressed = False

    # -- public ---------------------------------------------------------

    def feed(self, data: bytes) -> list:
        return self._records(self.unpacked(data))

    def unpacked(self, data: bytes) -> bytes:
        """The capture's own bytes in this chunk: inflated when the file is gzip-compressed,
        nothing once reading has stopped (the scan kernel's host walks them itself)."""
        self.bytes_read += len(data)
        if self._stopped:
            return b""
        if self._start is not None:
            # Wireshark opens .pcap.gz as it is; so does this reader, streaming.
            # The first two bytes decide, so they wait for each other.
            self._start += bytes(data)
            if len(self._start) < 2:
                return b""
            data, self._start = self._start, None
            self.compressed = data[:2] == GZIP_MAGIC
            if self.compressed:
                self._inflate = zlib.decompressobj(wbits=31)
        if self.compressed:
            data = self._inflated(bytes(data))
        return bytes(data)

    def _not_a_capture(self, head: bytes) -> str:
        sentence = describe_non_capture(head)
        if self.compressed:
            return sentence.replace("This is not a", "This gzip-compressed file does not hold a", 1)
        return sentence

    def _inflated(self, data: bytes) -> bytes:
        out = []
        while data and self._inflate is not None:
            try:
                out.append(self._inflate.decompress(data))
            except zlib.error as error:
                self.warnings.append(f"The compressed file is damaged after {self.bytes_read} bytes ({error}); "
                                     "everything before it was analyzed.")
                self._inflate = None
                break
            data = self._inflate.unused_data  # a further gzip member (concatenated files)
            if self._inflate.eof:
                self._inflate = zlib.decompressobj(wbits=31) if data else self._inflate
        return b"".join(out)

    def _records(self, data: bytes) -> list:
        if not data:
            return []
        if self._needed:
            self._gathered.append(data)
            self._gathered_size += len(data)
            if len(self._pending) + self._gathered_size < self._needed:
                return []
            data = b"".join(self._gathered)
            self._gathered, self._gathered_size = [], 0
        buffer = self._pending + data if self._pending else data
        if self.record_offsets is not None:
            self.record_offsets = []
        if self.format is None:
            if len(buffer) < 4:
                self._pending = buffer
                return []
            self._detect(buffer[:4])
        self._needed = 0
        if self.format == "pcap":
            out, used = self._read_pcap(buffer)
        else:
            out, used = self._read_pcapng(buffer)
        self._pending = buffer[used:]
        self._buffer_offset += used
        return out

    def close(self) -> None:
        """End of input: explain anything left unread."""
        if self._gathered:
            self._pending += b"".join(self._gathered)
            self._gathered = []
        if self._inflate is not None and not self._inflate.eof:
            self.warnings.append("The compressed file ends before its end marker: it was probably cut short; "
                                 "everything before that was analyzed.")
        if self.format is None:
            if self.bytes_read == 0:
                raise CaptureError("The file is empty.")
            if self.compressed and not self._pending:
                raise CaptureError("This gzip-compressed file holds no data it could inflate.")
            raise CaptureError(self._not_a_capture(self._start or self._pending))
        if self._pending and not self._stopped:
            self.warnings.append(self._cut_record())
        self._pending = b""
        if self._cut_packets:
            self.warnings.append(
                f"{self._cut_packets} packets were cut short by the capture's snap length "
                f"(first: packet {self._cut_example}); messages in them may be incomplete."
            )
        if self._missing_interface:
            self.warnings.append(
                f"{self._missing_interface} packets name an interface the file never described; they were skipped."
            )
        if self._out_of_range:
            frame, time, interface = self._out_of_range_example
            self.warnings.append(
                f"{self._out_of_range} packets have times beyond the 100,000,000 days either side of 1970 that a "
                f"date can show (first: packet {frame}, {time:.6g} s from 1970), from their interface's "
                f"timestamp resolution ({interface.scale:g} s per tick) and offset ({interface.offset:g} s): "
                "the file's if_tsresol or if_tsoffset is probably wrong; these times are shown as out of range."
            )

    def _cut_record(self) -> str:
        """What the bytes left at the end of the file are: the start of a record that never ends."""
        pending, e = self._pending, self._endian
        if self.format == "pcap" and not self._header_read:
            return (f"The file ends {len(pending)} bytes into its 24-byte pcap header: "
                    "it was cut short before any packet.")
        header = 16 if self.format == "pcap" else 8
        what = f"packet {self.packets + 1}"
        if len(pending) < header:
            # A pcapng block says what it is only in its header: it may not be a packet.
            where = f"the header of {what}" if self.format == "pcap" else "the header of a pcapng block"
            return (f"The file ends {len(pending)} bytes into {where}: it was probably cut short; "
                    "everything before it was analyzed.")
        if self.format == "pcap":
            claimed, present = struct.unpack_from(e + "I", pending, 8)[0], len(pending) - 16
        else:
            block_type, claimed = struct.unpack_from(e + "II", pending)
            present = len(pending)
            if block_type not in PACKET_BLOCK_TYPES:
                what = f"a pcapng block of type {block_type:#x}"
        if claimed > MAX_SNAPLEN:
            why = (f"that length is more likely damaged than the file cut short: capture tools give a packet at "
                   f"most {MAX_SNAPLEN} bytes, and the bytes that follow were read as part of it")
        else:
            why = "the file was probably cut short"
        return (f"The file ends inside {what}, which claims {claimed} bytes of which {present} are there: "
                f"{why}; everything before it was analyzed.")

    # -- format detection -----------------------------------------------

    def _detect(self, head: bytes) -> None:
        if head in PCAP_MAGICS:
            self.format = "pcap"
            self._endian, self._pcap_scale = PCAP_MAGICS[head]
        elif head == PCAPNG_SHB:
            self.format = "pcapng"
        else:
            raise CaptureError(self._not_a_capture(head))

    def _stop(self, message: str) -> None:
        self.warnings.append(message)
        self._stopped = True

    @staticmethod
    def _oversized(what: str, claimed: int, at: int) -> str:
        return (f"{what} (at byte {at}) claims {claimed} bytes, more than the {MAX_RECORD} bytes this reader "
                f"takes for one record (capture tools give a packet at most {MAX_SNAPLEN}): that length is damaged, "
                "and the file cannot be read past it; everything before it was analyzed.")

    # -- pcap -------------------------------------------------------------

    def _read_pcap(self, buffer: bytes) -> tuple[list, int]:
        out: list = []
        pos = 0
        end = len(buffer)
        e = self._endian
        if not self._header_read:
            if end < 24:
                return out, 0
            linktype = struct.unpack_from(e + "I", buffer, 20)[0]
            # The top bits carry FCS information (pcap spec); the link type is the low 16.
            self._pcap_linktype = linktype & 0xFFFF
            self._header_read = True
            if self.blocks:
                out.append(Block(raw=buffer[:24], kind="pcap-header", endian=e, linktype=self._pcap_linktype))
            pos = 24
        record = struct.Struct(e + "IIII").unpack_from
        scale = self._pcap_scale
        linktype = self._pcap_linktype
        frame = self.packets
        blocks = self.blocks
        cut = 0
        while pos + 16 <= end:
            sec, frac, incl, orig = record(buffer, pos)
            nxt = pos + 16 + incl
            if incl > MAX_RECORD:
                self._stop(self._oversized(f"Packet {frame + 1}", incl, self.bytes_read - end + pos))
                break
            if nxt > end:
                self._needed = nxt - pos
                break
            frame += 1
            if incl < orig:
                cut += 1
                if not self._cut_example:
                    self._cut_example = frame
            data = buffer[pos + 16 : nxt]
            if blocks:
                out.append(
                    Block(raw=buffer[pos:nxt], kind="packet", endian=e, frame=frame,
                          time=sec + frac * scale, linktype=linktype, data=data, orig_len=orig)
                )
            else:
                out.append((frame, sec + frac * scale, linktype, data))
                if self.record_offsets is not None:
                    self.record_offsets.append(self._buffer_offset + pos + 16)
            pos = nxt
        if frame > self.packets:
            self.link_types.add(linktype)
        self._cut_packets += cut
        self.packets = frame
        return out, pos

    # -- pcapng -----------------------------------------------------------

    def _read_pcapng(self, buffer: bytes) -> tuple[list, int]:
        out: list = []
        pos = 0
        end = len(buffer)
        while pos + 12 <= end:
            if buffer[pos : pos + 4] == PCAPNG_SHB:
                magic = buffer[pos + 8 : pos + 12]
                if magic == b"\x4d\x3c\x2b\x1a":
                    self._endian = "<"
                elif magic == b"\x1a\x2b\x3c\x4d":
                    self._endian = ">"
                else:
                    self._stop(f"A pcapng section header at byte {self.bytes_read - end + pos} is damaged; the rest of the file was not read.")
                    break
            e = self._endian
            block_type, length = struct.unpack_from(e + "II", buffer, pos)
            if length < 12 or length % 4:
                self._stop(
                    f"A pcapng block at byte {self.bytes_read - end + pos} has an impossible length ({length}); "
                    f"the file is damaged from there on; everything before it was analyzed."
                )
                break
            if length > MAX_RECORD:
                what = f"Packet {self.packets + 1}" if block_type in PACKET_BLOCK_TYPES else "A pcapng block"
                self._stop(self._oversized(what, length, self.bytes_read - end + pos))
                break
            if pos + length > end:
                self._needed = length
                break
            block = buffer[pos : pos + length]
            self._block_offset = self._buffer_offset + pos
            pos += length
            self._pcapng_block(block_type, block, e, out)
        return out, pos

    def _pcapng_block(self, block_type: int, block: bytes, e: str, out: list) -> None:
        body = block[8:-4]
        if block_type in PACKET_BLOCK_TYPES:
            self._pcapng_packet(block_type, block, body, e, out)
            return
        options = None
        if block_type == SECTION_HEADER:
            # A new section starts its own interface numbering.
            self._interfaces = []
        if block_type in OPTIONS_OFFSET:
            options = parse_options(body, OPTIONS_OFFSET[block_type], e)
        if block_type == INTERFACE_DESCRIPTION and len(body) >= 8:
            linktype = struct.unpack_from(e + "H", body)[0]
            scale, offset = timestamp_scale(options or [], e)
            self._interfaces.append(Interface(linktype, scale, offset))
        if self.blocks:
            out.append(Block(raw=block, kind="block", endian=e, block_type=block_type, options=options))

    def _pcapng_packet(self, block_type: int, block: bytes, body: bytes, e: str, out: list) -> None:
        if block_type == ENHANCED_PACKET:
            if len(body) < 20:
                return self._damaged_packet(block, e, out)
            interface_id, high, low, caplen, orig = struct.unpack_from(e + "IIIII", body)
            start = 20
        elif block_type == OBSOLETE_PACKET:
            if len(body) < 20:
                return self._damaged_packet(block, e, out)
            interface_id, _drops, high, low, caplen, orig = struct.unpack_from(e + "HHIIII", body)
            start = 20
        else:
            # Simple packet blocks have no timestamp; the captured length is
            # what fits in the block, capped by the interface's snap length.
            if len(body) < 4:
                return self._damaged_packet(block, e, out)
            interface_id, high, low = 0, 0, 0
            orig = struct.unpack_from(e + "I", body)[0]
            caplen = min(orig, len(body) - 4)
            start = 4
        if start + caplen > len(body):
            return self._damaged_packet(block, e, out)
        self.packets += 1
        frame = self.packets
        if interface_id >= len(self._interfaces):
            self._missing_interface += 1
            self._keep_unreadable(block, block_type, e, out)
            return
        interface = self._interfaces[interface_id]
        time = ((high << 32) | low) * interface.scale + interface.offset
        if not -MAX_DATE_SECONDS <= time <= MAX_DATE_SECONDS:
            # Kept as read, the file's own account of when; a warning says why no date can be shown.
            self._out_of_range += 1
            if self._out_of_range_example is None:
                self._out_of_range_example = (frame, time, interface)
        data = body[start : start + caplen]
        if caplen < orig:
            self._cut_packets += 1
            if not self._cut_example:
                self._cut_example = frame
        self.link_types.add(interface.linktype)
        if self.blocks:
            options = parse_options(body, start + caplen + (-caplen % 4), e) if block_type != SIMPLE_PACKET else None
            out.append(
                Block(raw=block, kind="packet", endian=e, block_type=block_type, frame=frame, time=time,
                      linktype=interface.linktype, interface=interface_id, data=data, orig_len=orig, options=options)
            )
        else:
            out.append((frame, time, interface.linktype, data))
            if self.record_offsets is not None:
                self.record_offsets.append(self._block_offset + 8 + start)  # 8: block type and length

    def _damaged_packet(self, block: bytes, e: str, out: list) -> None:
        self.packets += 1
        self.warnings.append(f"Packet {self.packets} is a damaged pcapng block ({len(block)} bytes); it was skipped.")
        self._keep_unreadable(block, ENHANCED_PACKET, e, out)

    def _keep_unreadable(self, block: bytes, block_type: int, e: str, out: list) -> None:
        # A rewriter must still copy what we could not read: nothing the user
        # gave is dropped silently.
        if self.blocks:
            out.append(Block(raw=block, kind="block", endian=e, block_type=block_type, frame=self.packets))
