"""`python -m sipdiag`: what a user sees for bad input, and that their files are never altered."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys

import pytest
from locations import REPO

SAMPLE = REPO / "static" / "sample.pcap"


def sipdiag(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sipdiag", *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO / "py")})


@pytest.mark.parametrize("content, message", [
    (b"", "The file is empty."),
    (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", "This is not a pcap or pcapng capture: it looks like a JPEG image."),
    (bytes(range(256)) * 4, "This is not a pcap or pcapng capture: its first bytes match neither format."),
])
def test_not_a_capture_is_one_sentence_and_exit_2(tmp_path, content, message):
    path = tmp_path / "upload.pcap"
    path.write_bytes(content)
    for command in (["analyze", path, "--json"], ["redact", path, "-o", tmp_path / "out.pcap"]):
        completed = sipdiag(*command)
        assert (completed.returncode, completed.stdout) == (2, "")
        assert completed.stderr == f"sipdiag: {path}: {message}\n"
    assert not (tmp_path / "out.pcap").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["upload.pcap"]  # no temporary file left behind


def test_redact_refuses_to_overwrite_the_original(tmp_path):
    capture = tmp_path / "sample.pcap"
    shutil.copyfile(SAMPLE, capture)
    before = hashlib.sha256(capture.read_bytes()).hexdigest()
    completed = sipdiag("redact", capture, "-o", tmp_path / "." / "sample.pcap")
    assert completed.returncode == 2
    assert "this is the capture being redacted" in completed.stderr
    assert hashlib.sha256(capture.read_bytes()).hexdigest() == before


def test_redact_into_a_missing_folder_names_the_folder(tmp_path):
    completed = sipdiag("redact", SAMPLE, "-o", tmp_path / "missing" / "out.pcap")
    assert completed.returncode == 2
    assert completed.stderr == f"sipdiag: {tmp_path / 'missing' / 'out.pcap'}: the folder {tmp_path / 'missing'} does not exist\n"
