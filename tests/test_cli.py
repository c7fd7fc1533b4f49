"""`python -m sipdiag`: what a user sees for bad input, and that their files are never altered."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys

import pytest
from locations import FIXTURES, REPO, SHARED_CAPTURES

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


def test_redact_refuses_a_folder_or_a_device_as_output(tmp_path):
    device = os.stat("/dev/null")
    for output, why in ((tmp_path, "is a folder; name a file to write"),
                        ("/dev/null", "is not a regular file (a device or a pipe); name a file to write")):
        completed = sipdiag("redact", SAMPLE, "-o", output)
        assert (completed.returncode, completed.stderr) == (2, f"sipdiag: {output}: {why}\n")
    after = os.stat("/dev/null")
    assert (after.st_rdev, after.st_mode) == (device.st_rdev, device.st_mode)  # still the device, run as root too
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("option, message", [
    (["--keep-address", "10.0.0.0/33"], "keep address '10.0.0.0/33': not an address or subnet"),
    (["--redact-regex", "ACCT-(["], "redact regex 'ACCT-([': unterminated character set at position 6"),
])
def test_an_option_that_does_not_parse_is_named_in_one_line(tmp_path, option, message):
    completed = sipdiag("redact", SAMPLE, "-o", tmp_path / "out.pcap", *option)
    assert (completed.returncode, completed.stdout, completed.stderr) == (2, "", f"sipdiag: {message}\n")
    assert list(tmp_path.iterdir()) == []


def test_an_empty_passphrase_is_no_passphrase(tmp_path):
    """As in the page: an empty key means a random one, so two exports differ."""
    outputs = []
    for n in range(2):
        out = tmp_path / f"out{n}.pcap"
        assert sipdiag("redact", SAMPLE, "-o", out, "--key", "").returncode == 0
        outputs.append(out.read_bytes())
    assert outputs[0] != outputs[1]
    keyed = [sipdiag("redact", SAMPLE, "-o", tmp_path / f"k{n}.pcap", "--key", "k") for n in range(2)]
    assert (tmp_path / "k0.pcap").read_bytes() == (tmp_path / "k1.pcap").read_bytes() and not any(c.returncode for c in keyed)


def test_kept_subnet_and_extra_strings_in_the_cli(tmp_path):
    out = tmp_path / "out.pcap"
    completed = sipdiag("redact", SAMPLE, "-o", out, "--key", "k", "--keep-address", "10.77.0.2/32",
                        "--redact-string", "kamailio", "--policy", "drop")
    assert completed.returncode == 0
    data = out.read_bytes()
    assert b"10.77.0.2" in data and b"10.77.0.1" not in data and b"kamailio" not in data.lower()


def test_text_output_shows_each_cause_its_instances_and_what_it_explains():
    completed = sipdiag("analyze", FIXTURES / "dns" / "dns_nxdomain_no_register.pcap")
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.splitlines()[1:] == [
        "[error] DNS_FAILURE: SIP domain exmaple.test does not resolve: lookups answered NXDOMAIN (3 lookups)",
        "    - DNS NAPTR exmaple.test answered NXDOMAIN",
        "    - DNS SRV _sip._udp.exmaple.test answered NXDOMAIN",
        "    - DNS A exmaple.test answered NXDOMAIN",
        "  which explains [error] NO_REGISTER_DNS_SUSPECT: No REGISTER in the capture and SIP-related DNS lookups "
        "failed: exmaple.test NAPTR (NXDOMAIN), _sip._udp.exmaple.test SRV (NXDOMAIN), exmaple.test A (NXDOMAIN)",
    ]


def test_text_output_names_each_call_of_a_cause():
    completed = sipdiag("analyze", SHARED_CAPTURES / "ndpi__gre_sip.pcapng")
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.splitlines()[1:] == [
        "[warning] RTP_MISSING: Answered call, but the capture holds no RTP at all (2 calls)",
        *(f"    - Call from sip:281@192.168.103.40 to sip:271@192.168.10.210 (Call-ID {call_id}@192.168.103.40): "
          "Answered call, but the capture holds no RTP at all" for call_id in ("AI1737AB5491ADC392", "AI3B1F578CA7F5E2AA")),
    ]


def test_analyze_html_writes_the_readable_report(tmp_path):
    out = tmp_path / "report.html"
    completed = sipdiag("analyze", SAMPLE, "--html", out)
    assert completed.returncode == 0
    assert completed.stdout == sipdiag("analyze", SAMPLE).stdout  # the summary is printed as without --html
    html = out.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and "<title>sipdiag report: sample.pcap</title>" in html


def test_analyze_html_refuses_a_folder_the_capture_and_writes_nothing_for_a_bad_file(tmp_path):
    completed = sipdiag("analyze", SAMPLE, "--html", tmp_path)
    assert (completed.returncode, completed.stderr) == (2, f"sipdiag: {tmp_path}: is a folder; name a file to write\n")
    capture = tmp_path / "sample.pcap"
    shutil.copyfile(SAMPLE, capture)
    completed = sipdiag("analyze", capture, "--html", capture)
    assert (completed.returncode, completed.stderr) == (
        2, f"sipdiag: {capture}: this is the capture being analyzed; write the output under another name\n")
    assert capture.read_bytes() == SAMPLE.read_bytes()
    empty = tmp_path / "empty.pcap"
    empty.write_bytes(b"")
    assert sipdiag("analyze", empty, "--html", tmp_path / "out.html").returncode == 2
    assert not (tmp_path / "out.html").exists()
