"""A gzip-compressed capture (`.pcap.gz`, `.pcapng.gz`) is read as Wireshark
reads it: streamed through the decompressor, with the same report as the
uncompressed file."""

from __future__ import annotations

import gzip

import pytest
from locations import SHARED_CAPTURES
from sipdiag.engine import CaptureAnalysis, analyze_path

SHARED = sorted(SHARED_CAPTURES.glob("*.pcap*"))


@pytest.mark.parametrize("path", SHARED, ids=lambda p: p.name)
def test_gzipped_copy_gives_the_same_report(path, tmp_path):
    packed = tmp_path / (path.name + ".gz")
    packed.write_bytes(gzip.compress(path.read_bytes(), mtime=0))
    report, original = analyze_path(str(packed)), analyze_path(str(path))
    assert report["capture"].pop("file") == packed.name
    original["capture"].pop("file")
    assert report == original


def test_chunks_split_anywhere_in_the_compressed_stream(shared_captures):
    path = shared_captures / "zeek__dns-naptr.pcap"
    data = gzip.compress(path.read_bytes(), mtime=0)
    analysis = CaptureAnalysis(path.name)
    for at in range(0, len(data), 3):
        analysis.feed(data[at : at + 3])
    assert analysis.finish() == analyze_path(str(path))


def test_concatenated_members_and_a_cut_stream(shared_captures, tmp_path):
    original = (shared_captures / "zeek__dns-naptr.pcap").read_bytes()
    half = len(original) // 2
    joined = tmp_path / "two.pcap.gz"
    joined.write_bytes(gzip.compress(original[:half], mtime=0) + gzip.compress(original[half:], mtime=0))
    assert analyze_path(str(joined))["dns"] == analyze_path(str(shared_captures / "zeek__dns-naptr.pcap"))["dns"]
    cut = tmp_path / "cut.pcap.gz"
    cut.write_bytes(gzip.compress(original, mtime=0)[:-12])
    warnings = analyze_path(str(cut))["capture"]["warnings"]
    assert any("compressed file ends before its end marker" in warning for warning in warnings)
