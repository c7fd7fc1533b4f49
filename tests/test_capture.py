import struct
import subprocess
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from locations import SHARED_CAPTURES
from packet_builders import pcap, pcapng
from sipdiag.capture.pcapfile import CaptureError, CaptureReader

SHARED = sorted(p for p in SHARED_CAPTURES.glob("*") if p.suffix in (".pcap", ".pcapng"))


def block(block_type, body, endian="<"):
    body += b"\0" * (-len(body) % 4)
    return struct.pack(endian + "II", block_type, len(body) + 12) + body + struct.pack(endian + "I", len(body) + 12)


def option(code, value, endian="<"):
    return struct.pack(endian + "HH", code, len(value)) + value + b"\0" * (-len(value) % 4)


def shb(endian="<", options=b""):
    return block(0x0A0D0D0A, struct.pack(endian + "IHHq", 0x1A2B3C4D, 1, 0, -1) + options, endian)


def idb(linktype, tsresol=None, endian="<"):
    options = b""
    if tsresol is not None:
        options = option(9, bytes([tsresol]), endian) + option(0, b"", endian)
    return block(1, struct.pack(endian + "HHI", linktype, 0, 0) + options, endian)


def epb(interface, ticks, data, endian="<", comment=None):
    body = struct.pack(endian + "IIIII", interface, ticks >> 32, ticks & 0xFFFFFFFF, len(data), len(data))
    body += data + b"\0" * (-len(data) % 4)
    if comment is not None:
        body += option(1, comment, endian) + option(0, b"", endian)
    return block(6, body, endian)


def read_all(data, chunk=None, blocks=False):
    reader = CaptureReader(blocks=blocks)
    out = []
    step = chunk or max(len(data), 1)
    for i in range(0, len(data), step):
        out += reader.feed(data[i : i + step])
    reader.close()
    return reader, out


@pytest.mark.parametrize("endian", ["<", ">"])
@pytest.mark.parametrize("nanos", [False, True])
def test_pcap_byte_orders_and_resolutions(endian, nanos):
    data = pcap([(1000, 500, b"abc", 3), (1001, 7, b"defg", 4)], endian, nanos, linktype=113)
    reader, packets = read_all(data)
    scale = 1e-9 if nanos else 1e-6
    assert reader.format == "pcap"
    assert packets == [(1, 1000 + 500 * scale, 113, b"abc"), (2, 1001 + 7 * scale, 113, b"defg")]
    assert reader.link_types == {113}
    assert reader.warnings == []


def test_pcap_linktype_ignores_fcs_bits():
    data = pcap([(1, 0, b"x", 1)], linktype=(0x1 << 28) | 1)
    assert read_all(data)[1][0][2] == 1


@pytest.mark.parametrize("chunk", [1, 3, 16, 17, 1000])
def test_any_chunking_gives_the_same_packets(chunk):
    data = pcap([(i, i, bytes([i]) * i, i) for i in range(1, 40)])
    assert read_all(data, chunk)[1] == read_all(data)[1]


def test_truncated_last_record_is_a_warning_and_earlier_packets_survive():
    data = pcap([(1, 0, b"first", 5), (2, 0, b"second-packet", 13)])[:-4]
    reader, packets = read_all(data)
    assert [p[0] for p in packets] == [1]
    assert reader.warnings == ["The file ends inside packet 2, which claims 13 bytes of which 9 are there: "
                               "the file was probably cut short; everything before it was analyzed."]


@pytest.mark.parametrize(("cut", "warning"), [
    (10, "The file ends 10 bytes into its 24-byte pcap header: it was cut short before any packet."),
    (24 + 16 + 5 + 7, "The file ends 7 bytes into the header of packet 2: it was probably cut short; "
                      "everything before it was analyzed."),
])
def test_a_file_cut_in_a_header_says_which(cut, warning):
    reader, _ = read_all(pcap([(1, 0, b"first", 5), (2, 0, b"second-packet", 13)])[:cut])
    assert reader.warnings == [warning]


def test_a_damaged_length_that_runs_past_the_end_is_not_called_a_cut():
    """The 60 MB claim swallows the packets after it; the file is whole, so the warning must not say it was cut."""
    later = pcap([(3, 0, b"third", 5), (4, 0, b"fourth", 6)])[24:]
    data = pcap([(1, 0, b"first", 5)]) + struct.pack("<IIII", 2, 0, 60_000_000, 60_000_000) + later
    reader, packets = read_all(data, chunk=7)
    assert [p[0] for p in packets] == [1]
    assert reader.warnings == [
        f"The file ends inside packet 2, which claims 60000000 bytes of which {len(later)} are there: that length is "
        "more likely damaged than the file cut short: capture tools give a packet at most 262144 bytes, and the bytes "
        "that follow were read as part of it; everything before it was analyzed."]


@pytest.mark.parametrize("size", [1 << 20, 60_000_000])
def test_a_large_whole_record_is_read(size):
    """Past any snap length (jumbo frames, offloaded TCP, odd writers), still within what one record may hold."""
    data = pcap([(1, 0, b"a", 1), (2, 0, bytes(size), size), (3, 0, b"c", 1)])
    started = time.perf_counter()
    reader, packets = read_all(data, chunk=1 << 20)
    assert time.perf_counter() - started < 5  # the record is joined once, not copied with every chunk
    assert [(p[0], len(p[3])) for p in packets] == [(1, 1), (2, size), (3, 1)]
    assert reader.warnings == []


def test_snaplen_cut_packets_are_counted():
    reader, packets = read_all(pcap([(1, 0, b"abc", 1500), (2, 0, b"abc", 3)]))
    assert len(packets) == 2
    assert reader.warnings == [
        "1 packets were cut short by the capture's snap length (first: packet 1); messages in them may be incomplete."
    ]


def test_absurd_record_length_stops_with_a_warning():
    data = pcap([(1, 0, b"ok", 2)]) + struct.pack("<IIII", 2, 0, 0x7FFFFFFF, 0x7FFFFFFF) + b"junk" * 10
    reader, packets = read_all(data)
    assert [p[0] for p in packets] == [1]
    assert reader.warnings == [
        "Packet 2 (at byte 42) claims 2147483647 bytes, more than the 67108864 bytes this reader takes for one "
        "record (capture tools give a packet at most 262144): that length is damaged, and the file cannot be read "
        "past it; everything before it was analyzed."]


def test_absurd_pcapng_block_length_stops_with_a_warning():
    data = shb() + idb(1) + epb(0, 0, b"ok") + struct.pack("<II", 6, 0x7FFFFFF0) + bytes(40)
    reader, packets = read_all(data)
    assert len(packets) == 1
    assert reader.warnings[0].startswith("Packet 2 (at byte 84) claims 2147483632 bytes, more than the 67108864")


def test_pcapng_cut_inside_a_block():
    data = shb() + idb(1) + epb(0, 0, b"ok") + epb(0, 0, b"second")
    reader, _ = read_all(data[:-10])
    assert reader.warnings == ["The file ends inside packet 2, which claims 40 bytes of which 30 are there: "
                               "the file was probably cut short; everything before it was analyzed."]
    reader, _ = read_all(data[:-35])
    assert reader.warnings == ["The file ends 5 bytes into the header of a pcapng block: it was probably cut short; "
                               "everything before it was analyzed."]
    reader, _ = read_all(shb() + idb(1)[:-4])
    assert reader.warnings == ["The file ends inside a pcapng block of type 0x1, which claims 20 bytes of which 16 "
                               "are there: the file was probably cut short; everything before it was analyzed."]


@pytest.mark.parametrize(("tsresol", "tsoffset", "ticks"), [
    (0, None, 1 << 62),  # seconds per tick, for a writer that counted microseconds
    (None, 1 << 62, 1_000_000),  # an offset of 146 billion years
    (None, -(1 << 62), 0),
])
def test_pcapng_times_beyond_any_date_are_kept_and_flagged(tsresol, tsoffset, ticks):
    reader, packets = read_all(pcapng([(ticks, b"a"), (ticks + 1, b"b")], tsresol=tsresol, tsoffset=tsoffset))
    scale = 1.0 if tsresol == 0 else 1e-6
    assert [(frame, t) for frame, t, _, _ in packets] == [
        (1, ticks * scale + (tsoffset or 0)), (2, (ticks + 1) * scale + (tsoffset or 0))]
    [warning] = reader.warnings
    assert warning.startswith(
        f"2 packets have times beyond the 100,000,000 days either side of 1970 that a date can show (first: packet 1, "
        f"{packets[0][1]:.6g} s from 1970), from their interface's timestamp resolution ({scale:g} s per tick) and "
        f"offset ({float(tsoffset or 0):g} s)")
    assert warning.endswith("these times are shown as out of range.")


def test_pcapng_times_within_range_are_not_flagged():
    reader, _ = read_all(pcapng([(0, b"a"), ((1 << 64) - 1, b"b")], tsresol=9))  # 1970 to the year 2554
    assert reader.warnings == []


@pytest.mark.parametrize(
    "data, words",
    [
        (b"", "empty"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "JPEG"),
        (b"%PDF-1.7", "PDF"),
        (b"\x1f\x8b\x08\x00", "gzip"),
        (b"hello world", "neither format"),
    ],
)
def test_non_captures_raise_a_clear_error(data, words):
    with pytest.raises(CaptureError, match=words):
        read_all(data)


def test_three_bytes_are_not_enough_to_decide():
    reader = CaptureReader()
    assert reader.feed(b"\xd4\xc3") == []
    with pytest.raises(CaptureError):
        reader.close()


def test_pcapng_interfaces_keep_their_own_link_type_and_resolution():
    data = (
        shb()
        + idb(1)  # microseconds by default
        + idb(113, tsresol=9)  # nanoseconds
        + idb(101, tsresol=0x80 | 10)  # 2^-10 s
        + epb(0, 1_500_000, b"eth")
        + epb(1, 2_000_000_000, b"sll")
        + epb(2, 3 * 1024, b"raw")
    )
    reader, packets = read_all(data)
    assert reader.format == "pcapng"
    assert packets == [(1, 1.5, 1, b"eth"), (2, 2.0, 113, b"sll"), (3, 3.0, 101, b"raw")]
    assert reader.link_types == {1, 101, 113}


def test_pcapng_new_section_restarts_interfaces_and_may_change_byte_order():
    data = shb() + idb(1) + epb(0, 1_000_000, b"a") + shb(">") + idb(228, endian=">") + epb(0, 2_000_000, b"b", ">")
    reader, packets = read_all(data, chunk=5)
    assert packets == [(1, 1.0, 1, b"a"), (2, 2.0, 228, b"b")]


def test_pcapng_simple_and_obsolete_packet_blocks():
    simple = block(3, struct.pack("<I", 4) + b"simp")
    obsolete = block(2, struct.pack("<HHIIII", 0, 0, 0, 5_000_000, 3, 3) + b"old")
    reader, packets = read_all(shb() + idb(1) + simple + obsolete)
    assert packets == [(1, 0.0, 1, b"simp"), (2, 5.0, 1, b"old")]


def test_pcapng_packet_for_an_undescribed_interface_is_counted_and_reported():
    reader, packets = read_all(shb() + idb(1) + epb(3, 0, b"x") + epb(0, 0, b"y"))
    assert packets == [(2, 0.0, 1, b"y")]
    assert "never described" in reader.warnings[0]


def test_pcapng_impossible_block_length_stops_with_a_warning():
    data = shb() + idb(1) + epb(0, 0, b"ok") + struct.pack("<II", 6, 13) + b"\0" * 20
    reader, packets = read_all(data)
    assert len(packets) == 1 and "impossible length" in reader.warnings[0]


def test_block_mode_rewrites_packets_and_options():
    data = shb() + idb(1) + epb(0, 1_000_000, b"secret", comment=b"customer 42")
    reader, blocks = read_all(data, blocks=True)
    assert [b.kind for b in blocks] == ["block", "block", "packet"]
    packet = blocks[2]
    assert packet.options == [(1, b"customer 42")]
    packet.replace(data=b"redacted!", options=[])
    again = read_all(b"".join(b.encode() for b in blocks), blocks=True)[1][2]
    assert (again.data, again.orig_len, again.options, again.time) == (b"redacted!", 9, [], 1.0)


def test_block_mode_pcap_rewrite_keeps_snaplen_cut():
    reader, blocks = read_all(pcap([(5, 6, b"abcd", 100)]), blocks=True)
    blocks[1].replace(data=b"ab")
    packets = read_all(b"".join(b.encode() for b in blocks))[1]
    blocks2 = read_all(b"".join(b.encode() for b in blocks), blocks=True)[1]
    assert packets == [(1, 5.000006, 1, b"ab")]
    assert blocks2[1].orig_len == 98


@pytest.mark.parametrize("path", SHARED, ids=lambda p: p.name)
def test_real_captures_round_trip_byte_for_byte(path):
    data = path.read_bytes()
    assert b"".join(b.encode() for b in read_all(data, chunk=4096, blocks=True)[1]) == data


@pytest.mark.parametrize("path", SHARED, ids=lambda p: p.name)
def test_frames_and_times_match_tshark(path):
    fields = subprocess.run(
        ["tshark", "-n", "-r", str(path), "-T", "fields", "-e", "frame.number", "-e", "frame.time_epoch", "-e", "frame.cap_len"],
        capture_output=True, text=True, check=True,
    ).stdout.split("\n")
    expected = [(int(n), float(t), int(c)) for n, t, c in (line.split("\t") for line in fields if line)]
    packets = read_all(path.read_bytes(), chunk=65536)[1]
    assert [(f, round(t, 6), len(d)) for f, t, _, d in packets] == [(f, round(t, 6), c) for f, t, c in expected]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400), st.sampled_from([b"\xd4\xc3\xb2\xa1", b"\x0a\x0d\x0d\x0a", b""]), st.integers(1, 50))
def test_garbage_never_escapes_as_anything_but_capture_error(body, magic, chunk):
    try:
        read_all(magic + body, chunk)
    except CaptureError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_mutated_real_capture_never_crashes(data):
    original = bytearray((SHARED[0].parent / "pcapplusplus__sip_resp.pcap").read_bytes())
    for _ in range(data.draw(st.integers(1, 8))):
        original[data.draw(st.integers(0, len(original) - 1))] = data.draw(st.integers(0, 255))
    try:
        read_all(bytes(original), data.draw(st.integers(1, 4096)), blocks=data.draw(st.booleans()))
    except CaptureError:
        pass
