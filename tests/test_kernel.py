"""The scan kernel (py/sipdiag/capture/kernel/scan.c): its binary is its source's,
it survives hostile input natively under sanitizers, damaged records end the
walk with a status the reader words as before, and chunking never matters."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from locations import FIXTURES, REPO, SHARED_CAPTURES
from packet_builders import INVITE, SDP, ethernet, ipv4, ipv6, pcap, pcapng, rtp, udp
from sipdiag.capture import scan as scan_module
from sipdiag.capture.scan import BLOCK, DAMAGED, NEED_MORE, Kernel, KernelReader
from sipdiag.engine import CaptureAnalysis, analyze_path
from sipdiag.protocols.rtp import RtpTracker

sys.path.insert(0, str(REPO))
import build  # build.py compiles the kernel

KERNEL_DIR = build.KERNEL_DIR

# The fuzz runs this long in the suite (libFuzzer's -max_total_time).
FUZZ_SECONDS = int(os.environ.get("SIPDIAG_FUZZ_SECONDS", "60"))
# Seeds larger than this are left out: the harness takes at most twice the kernel's scratch size.
MAX_SEED = 1_000_000


def test_committed_wasm_is_built_from_the_source(tmp_path):
    """The page and the CLI run scan.wasm: it must be exactly what scan.c compiles to."""
    built = build.build_kernel(tmp_path / "scan.wasm")
    assert built.read_bytes() == build.KERNEL_WASM.read_bytes(), (
        "scan.wasm is not scan.c's build: run python3 build.py kernel and commit it")


def test_the_wasm_needs_nothing_from_its_host():
    import wasmtime

    module = wasmtime.Module(wasmtime.Engine(), build.KERNEL_WASM.read_bytes())
    assert list(module.imports) == []
    assert {export.name for export in module.exports} == {"memory", *scan_module.FUNCTIONS}


def seeds() -> list[Path]:
    found = [p for folder in (SHARED_CAPTURES, FIXTURES) for p in sorted(folder.rglob("*"))
             if p.suffix in (".pcap", ".pcapng") and p.stat().st_size <= MAX_SEED]
    return found + [REPO / "static" / "sample.pcap"]


def test_kernel_fuzz_under_address_and_undefined_behaviour_sanitizers(tmp_path):
    """libFuzzer on the native build of scan.c, seeded with every capture and fixture:
    any out-of-bounds read, overflow, trap or walk that stops moving fails the test."""
    harness = tmp_path / "fuzz_scan"
    subprocess.run(["clang", "-g", "-O1", "-fsanitize=fuzzer,address,undefined", "-fno-sanitize-recover=all",
                    "-o", str(harness), str(KERNEL_DIR / "fuzz_scan.c")], check=True)
    corpus, found = tmp_path / "corpus", tmp_path / "found"
    corpus.mkdir()
    found.mkdir()
    for index, path in enumerate(seeds()):
        # The harness's first byte chooses where the input splits into two chunks (mid-file) and
        # its redaction walk: writing with the MACs kept (0x80), or learning them (0x7f).
        (corpus / f"seed{index}").write_bytes((b"\x80" if index % 2 else b"\x7f") + path.read_bytes())
    run = subprocess.run([str(harness), f"-max_total_time={FUZZ_SECONDS}", f"-max_len={2 * MAX_SEED}",
                          "-timeout=10", "-rss_limit_mb=2048", f"-artifact_prefix={tmp_path}/", str(found),
                          str(corpus)], capture_output=True, text=True, timeout=FUZZ_SECONDS + 120, check=False)
    assert run.returncode == 0, run.stderr[-4000:]
    assert "Done " in run.stderr


# -- hostile records: the kernel stops, the reader says what it always said -----

SIP_FREE_PACKET = ethernet(ipv4(udp(rtp(1), 4000, 5000)))


def hostile_files() -> dict[str, tuple[bytes, int, int, str]]:
    """name -> (file, kernel status at the bad record, where it starts, the warning the report carries)."""
    good = pcap([(1, 0, SIP_FREE_PACKET, len(SIP_FREE_PACKET))])
    huge = good + struct.pack("<IIII", 2, 0, 0xFFFFFFFF, 0xFFFFFFFF) + b"rest"
    past_end = good + struct.pack("<IIII", 2, 0, 100, 100) + bytes(10)
    one_block = pcapng([(1_000_000, SIP_FREE_PACKET)])
    zero_length = one_block + struct.pack("<II", 6, 0) + bytes(20)
    odd_length = one_block + struct.pack("<II", 6, 30) + bytes(22)
    # An enhanced packet block whose captured length runs past the block's own length.
    body = struct.pack("<IIIII", 0, 0, 1, 64, 64) + bytes(8)
    disagreeing = one_block + struct.pack("<II", 6, len(body) + 12) + body + struct.pack("<I", len(body) + 12)
    at = len(good)
    return {
        "caplen 0xFFFFFFFF": (huge, DAMAGED, at, (
            f"Packet 2 (at byte {at}) claims 4294967295 bytes, more than the 67108864 bytes this reader takes for "
            "one record (capture tools give a packet at most 262144): that length is damaged, and the file cannot "
            "be read past it; everything before it was analyzed.")),
        "length past the end": (past_end, NEED_MORE, at, (
            "The file ends inside packet 2, which claims 100 bytes of which 10 are there: the file was probably "
            "cut short; everything before it was analyzed.")),
        "zero-length block": (zero_length, BLOCK, len(one_block), (
            f"A pcapng block at byte {len(one_block)} has an impossible length (0); the file is damaged from "
            "there on; everything before it was analyzed.")),
        "block length not a multiple of 4": (odd_length, BLOCK, len(one_block), (
            f"A pcapng block at byte {len(one_block)} has an impossible length (30); the file is damaged from "
            "there on; everything before it was analyzed.")),
        "captured length past the block": (disagreeing, BLOCK, len(one_block), (
            f"Packet 2 is a damaged pcapng block ({len(body) + 12} bytes); it was skipped.")),
    }


@pytest.mark.parametrize("name", hostile_files())
def test_hostile_record_stops_the_kernel_where_it_starts(name):
    data, status, bad_record, _warning = hostile_files()[name]
    kernel = Kernel()
    kernel.ensure(len(data))
    kernel.instance.write(kernel.buffer, data)
    pcap_file = data[:4] == b"\xd4\xc3\xb2\xa1"
    kernel.set("format", 1 if pcap_file else 2)
    if pcap_file:
        kernel.set("pcap_linktype", 1)
        kernel.set("pcap_scale", 1e-6)
        start = 24
    else:
        # What the reader writes after the section header and the interface block.
        table = kernel.call["interfaces_address"]()
        kernel.instance.write(table, struct.pack("<qdd", 1, 1e-6, 0.0))
        kernel.set("n_interfaces", 1)
        start = 28 + 20  # section header block, interface block
    # The good packet is accounted in the kernel (an RTP stream), the bad record stops the walk.
    assert kernel.scan(start, len(data)) == status
    assert (kernel.get("frame"), kernel.get("n_streams"), kernel.get("pos")) == (1, 1, bad_record)


@pytest.mark.parametrize("name", hostile_files())
def test_hostile_record_through_the_cli_is_a_warning(name, tmp_path):
    data, _status, _at, warning = hostile_files()[name]
    path = tmp_path / ("hostile.pcap" if data[:4] == b"\xd4\xc3\xb2\xa1" else "hostile.pcapng")
    path.write_bytes(data)
    run = subprocess.run([sys.executable, "-m", "sipdiag", "analyze", str(path), "--json"], capture_output=True,
                         env={**os.environ, "PYTHONPATH": str(REPO / "py")}, timeout=60, check=False)
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert warning in report["capture"]["warnings"]
    assert report["capture"]["packets"] == 1


# -- chunking -----------------------------------------------------------------------

@pytest.mark.parametrize("chunk", [1, 333, 65521])
def test_any_chunking_gives_the_same_report(chunk):
    """Records straddling chunks (the host keeps the tail and appends the next chunk)."""
    path = REPO / "static" / "sample.pcap"
    data = path.read_bytes()
    whole = CaptureAnalysis(path.name)
    whole.feed(data)
    pieces = CaptureAnalysis(path.name)
    for start in range(0, len(data), chunk):
        pieces.feed(data[start : start + chunk])
    expected = whole.finish()
    assert pieces.finish() == expected
    assert [len(call["media"]) for call in expected["calls"]] == [2], "the call's RTP is what the kernel accounts"


def test_reading_the_file_into_the_kernel_equals_feeding_bytes():
    path = SHARED_CAPTURES / "redrabbit__sip-rtp-g711.pcap"
    fed = CaptureAnalysis(path.name)
    fed.feed(path.read_bytes())
    assert analyze_path(str(path)) == fed.finish()


# -- where RtpTracker.account used to raise: the same note, the same partial counts ---------

def invite_announcing(rtpmap: bytes) -> bytes:
    """packet_builders' INVITE, its SDP offering payload type 96 with this rtpmap value."""
    sdp = SDP.replace(b"RTP/AVP 0\r\n", b"RTP/AVP 96\r\na=rtpmap:96 " + rtpmap + b"\r\n")
    return INVITE.replace(SDP, sdp).replace(b"Content-Length: %d" % len(SDP), b"Content-Length: %d" % len(sdp))


def call_with_rtpmap(rtpmap: bytes) -> bytes:
    """The INVITE at frame 1, then three RTP packets of payload type 96 to its media address."""
    packets = [ethernet(ipv4(udp(invite_announcing(rtpmap), 5060, 5060)))]
    packets += [ethernet(ipv4(udp(struct.pack("!BBHII", 0x80, 96, seq, seq * 160, 0x4242) + bytes(20), 5004, 4000),
                              src="10.0.0.2", dst="10.0.0.1")) for seq in (1, 2, 3)]
    return pcap([(100 + index, 0, packet, len(packet)) for index, packet in enumerate(packets)])


@pytest.mark.parametrize(("rtpmap", "warnings", "last_time"), [
    # A clock rate of 0: the jitter's division raised from the second packet on.
    (b"X/0", [f"frame {frame}: could not be decoded (ZeroDivisionError: float division by zero)"
              for frame in (3, 4)], 101.0),
    (b"telephone-event/0", [f"frame {frame}: could not be decoded (ZeroDivisionError: float division by zero)"
                            for frame in (3, 4)], 101.0),
    # A digit str.isdigit takes and int() refuses: every packet raised before its time was kept.
    ("X/\u00b2".encode(), [f"frame {frame}: could not be decoded (ValueError: invalid literal for int() with "
                           "base 10: '\u00b2')" for frame in (2, 3, 4)], 0.0),
])
def test_an_rtpmap_python_could_not_use_gives_the_same_notes(rtpmap, warnings, last_time, tmp_path):
    path = tmp_path / "call.pcap"
    path.write_bytes(call_with_rtpmap(rtpmap))
    report = analyze_path(str(path))
    assert report["capture"]["warnings"] == warnings
    [media] = report["calls"][0]["media"]
    assert (media["packets"], media["first_frame"], media["last_frame"], media["last_time"]) == (3, 2, 4, last_time)


def test_a_full_stream_table_is_a_warning_not_a_crash():
    """More confirmed streams than the kernel keeps (scan.c MAX_STREAMS): counted up to it, then said."""
    streams = 8192 + 3
    packets = [ethernet(ipv4(udp(rtp(seq, ssrc=ssrc), 4000 + ssrc % 1000, 5000)))
               for ssrc in range(streams) for seq in (1, 2)]
    analysis = CaptureAnalysis("many.pcap")
    analysis.feed(pcap([(1, index, packet, len(packet)) for index, packet in enumerate(packets)]))
    result = analysis.finish_result()
    assert len(result.rtp_streams) == 8192
    assert result.capture.warnings == [
        "The scan kernel's table of RTP streams is full: later ones were not counted."]


# -- watched streams: each packet comes back once accounted (rtp_stream.py's re-read) ------

def watch_capture() -> tuple[bytes, list[int]]:
    """Three streams that share ports: 0xAB over IPv4 (frames 1, 4, 7, 10), 0xCD on its flow,
    0xAB over IPv6. Returns the file and the IPv4 0xAB stream's frames."""
    packets = []
    for seq in (1, 2, 3, 4):
        packets += [ethernet(ipv4(udp(rtp(seq, ssrc=0xAB), 4000, 5000))),
                    ethernet(ipv4(udp(rtp(seq, ssrc=0xCD), 4000, 5000))),
                    ethernet(ipv6(udp(rtp(seq, ssrc=0xAB), 4000, 5000)), ethertype=0x86DD)]
    # 20 ms apart, each a little late: the jitter grows packet by packet.
    records = [(1, 20_000 * index + 300 * index * index, packet, len(packet)) for index, packet in enumerate(packets)]
    return pcap(records), [1, 4, 7, 10]


def walk_watching(data: bytes, watch_after: int | None = None) -> tuple[list, list]:
    """The kernel walks `data` watching 10.0.0.1:4000 -> 10.0.0.2:5000 0xAB (from the start, or once
    `watch_after` bytes are walked); returns what came back per watched packet and the streams."""
    kernel = Kernel()
    tracker = RtpTracker(kernel)
    came_back = []

    def watched(frame, time):
        number, jitter_ms, packet = tracker.watched_packet()
        came_back.append((frame, number, round(jitter_ms, 9), packet))

    reader = KernelReader(kernel, lambda records: None, lambda frame, error: None, tracker.raised, watched)
    split = len(data) if watch_after is None else watch_after
    if watch_after is None:
        assert tracker.watch("10.0.0.1", 4000, "10.0.0.2", 5000, 0xAB) == 1
    reader.feed(data[:split])
    if watch_after is not None:
        assert tracker.watch("10.0.0.1", 4000, "10.0.0.2", 5000, 0xAB) == 1
    reader.feed(data[split:])
    reader.close()
    return came_back, tracker.streams()


def test_a_watched_streams_packets_come_back_accounted():
    data, frames = watch_capture()
    came_back, streams = walk_watching(data)
    assert [frame for frame, _number, _jitter, _packet in came_back] == frames
    assert {number for _frame, number, _jitter, _packet in came_back} == {1}
    assert [packet for *_, packet in came_back] == [rtp(seq, ssrc=0xAB) for seq in (1, 2, 3, 4)]
    # The jitter after each packet is the kernel's: its last one is what streams() reports.
    jitters = [jitter for _frame, _number, jitter, _packet in came_back]
    assert jitters[0] == 0.0 and jitters == sorted(jitters) and jitters[-1] > 0
    [watched] = [s for s in streams if (s.src_ip, s.ssrc) == ("10.0.0.1", 0xAB)]
    assert jitters[-1] == round(watched.jitter_ms, 9)
    # Watching changes no count: the streams are those of a walk that watched nothing.
    analysis = CaptureAnalysis("watch.pcap")
    analysis.feed(data)
    assert streams == analysis.finish_result().rtp_streams


def test_a_stream_watched_after_it_began_comes_back_from_then_on():
    data, frames = watch_capture()
    record = 16 + len(ethernet(ipv4(udp(rtp(1), 4000, 5000))))
    after_two_rounds = 24 + 2 * (2 * record + 16 + len(ethernet(ipv6(udp(rtp(1), 4000, 5000)), ethertype=0x86DD)))
    came_back, _streams = walk_watching(data, watch_after=after_two_rounds)
    assert [frame for frame, *_ in came_back] == frames[2:]


def test_watch_numbers_one_per_stream_and_a_full_table():
    tracker = RtpTracker(Kernel())
    assert tracker.watch("10.0.0.1", 4000, "10.0.0.2", 5000, 0xAB) == 1
    assert tracker.watch("10.0.0.1", 4000, "10.0.0.2", 5000, 0xCD) == 2
    assert tracker.watch("2001:db8::1", 4000, "2001:db8::2", 5000, 0xAB) == 3
    assert tracker.watch("10.0.0.1", 4000, "10.0.0.2", 5000, 0xAB) == 1  # the same stream again
    assert tracker.watch("10.0.0.1", 4000, "2001:db8::2", 5000, 0xAB) is None  # no packet has both
    assert tracker.watch("host.example", 4000, "10.0.0.2", 5000, 0xAB) is None
    numbers = [tracker.watch("10.0.1.1", port, "10.0.0.2", 5000, 0xFFFFFFFF) for port in range(256)]
    assert numbers == list(range(4, 257)) + [None] * 3  # scan.c MAX_WATCHED


# -- the leak search (scan.c's last section) ---------------------------------------------------


def kernel_leak_hits(keys: list[tuple[bytes, bool]], data: bytes) -> list[tuple[int, int, int, int]]:
    """(frame, key, byte before, byte after) of every hit the kernel reports walking a pcap file, sorted."""
    kernel = Kernel()
    call, instance = kernel.call, kernel.instance
    instance.write(call["leak_key_bytes_address"](), b"".join(key for key, _ in keys))
    table, offset = b"", 0
    for key, folded in keys:
        table += scan_module.LEAK_KEY.pack(offset, len(key), folded, 0, 0)
        offset += len(key)
    instance.write(call["leak_keys_address"](), table)
    assert call["leak_index"](len(keys)) == 0
    kernel.set("format", scan_module.FORMAT_PCAP)
    state = call["leak_address"]()
    instance.write(state, scan_module.leak_state(scan_module.LEAK_KEYS, 0, len(keys)))
    kernel.ensure(len(data))
    instance.write(kernel.buffer, data)
    hits, pos = [], 24
    while True:
        status = kernel.scan(pos, len(data))
        n_hits = scan_module.LEAK_STATE.unpack(instance.read(state, scan_module.LEAK_STATE.size))[3]
        hits += scan_module.LEAK_HIT.iter_unpack(instance.read(call["leak_hits_address"](), 16 * n_hits))
        instance.write(state + scan_module.LEAK_COUNTS_OFFSET, bytes(16))
        pos = kernel.result()[0]
        if status == NEED_MORE:
            return sorted(hits)
        assert status == scan_module.LEAK_FULL


def every_occurrence(keys: list[tuple[bytes, bool]], records: list[bytes]) -> list[tuple[int, int, int, int]]:
    """The same, by trying every key at every position (folded: in bytes.lower() of the record)."""
    found = []
    for frame, record in enumerate(records, 1):
        lower = record.lower()
        for index, (key, folded) in enumerate(keys):
            data = lower if folded else record
            for at in range(len(data) - len(key) + 1):
                if data[at : at + len(key)] == key:
                    before = lower[at - 1] if at else -1
                    after = lower[at + len(key)] if at + len(key) < len(data) else -1
                    found.append((frame, index, before, after))
    return sorted(found)


def test_leak_search_finds_every_key_of_any_length_at_every_position():
    keys = [(b"\x07", False), (b"q", True), (b"Zq", False), (b"zq", True), (b"ab\x00", False), (b"\xff\xfe\xfd", True),
            (b"abcd", False), (b"abcde", True), (b"ABCDEFGH", False), (b"\x00\x00\x00\x00\x00", False)]
    records = [b"\x07", b"", b"Zq", b"ZQZq\x07", b"ab\x00ab\x00", b"\xff\xfe\xfd\xff", b"abcdABCDE", b"xABCDEFGH",
               bytes(9), b"q" * 40, bytes(range(256)) * 3]
    data = pcap([(i, 0, record, len(record)) for i, record in enumerate(records)], linktype=101)
    expected = every_occurrence(keys, records)
    assert len(expected) == 83
    assert kernel_leak_hits(keys, data) == expected
