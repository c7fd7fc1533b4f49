"""The Redact tab: verified redaction in the page, evidence pack downloads, nothing leaves the page;
policies, rounds, option errors and refusals as the CLI has them."""

from __future__ import annotations

import ipaddress
import json
import struct
import subprocess
from pathlib import Path

import pytest
from locations import SHARED_CAPTURES
from pagekit import open_capture

CAPTURE = SHARED_CAPTURES / "redrabbit__sip-rtp-g711.pcap"
ORIGINAL_ADDRESSES = ("10.0.2.15", "10.0.2.20")  # the two hosts of this call (tshark lists them)
# FTP, SNMP and NetBIOS beside the SIP: 37 frames no layer of the redactor reads.
UNREAD = SHARED_CAPTURES / "sngrep__aaa.pcap"
KEPT_ADDRESS = "212.242.33.35"  # one of its SIP hosts
# What the form below sends, in RedactionOptions' names (the CLI gets the same dict).
FORM_OPTIONS = {
    "users": True, "display_names": True, "domains": True, "call_ids": True, "user_agents": False,
    "mac_addresses": True, "rtp_payload": True, "pcapng_metadata": True, "keep_oui": True,
    "keep_addresses": [KEPT_ADDRESS], "redact_strings": ["brujula"], "redact_regexes": [r"voi1806\d"],
}
# Records each pass the Redact tab names while it runs (the label changes once per pass).
WATCH_PHASES = """() => {
  const phase = document.querySelector("#tab-panel .redact-phase");
  window.redactPhases = [];
  new MutationObserver(() => {
    const text = phase.textContent;
    if (text && window.redactPhases.at(-1) !== text) window.redactPhases.push(text);
  }).observe(phase, { childList: true, characterData: true, subtree: true });
}"""



def download(page, button_text: str, tmp_path: Path) -> Path:
    with page.expect_download(timeout=60_000) as info:
        page.locator("#tab-panel button", has_text=button_text).click()
    target = tmp_path / info.value.suggested_filename
    info.value.save_as(target)
    return target


def test_redact_tab_verifies_then_offers_the_evidence_pack(page_ready, tmp_path):
    page = page_ready.page
    open_capture(page, CAPTURE)
    page.locator('#tabs [data-tab="redact"]').click()
    options = page.locator("#tab-panel .redact-option input")
    assert options.count() == 8 and all(options.nth(i).is_checked() for i in range(8))
    preview = page.locator("#tab-panel .redact-table").first.locator("tbody tr").all_inner_texts()
    assert any(row.startswith("IP addresses\t2") for row in preview)
    assert page.locator("#tab-panel .redact-download").count() == 0  # nothing to download before verification

    page.locator("#tab-panel .redact-key").fill("shared secret")
    page.locator("#tab-panel .redact-start").click()
    page.locator("#tab-panel .redact-verified").wait_for(timeout=120_000)
    assert "no original value found" in page.locator("#tab-panel .redact-status").inner_text()

    capture = download(page, "Redacted capture", tmp_path)
    data = capture.read_bytes()
    assert capture.name.endswith(".redacted.pcap") and data[:4] == CAPTURE.read_bytes()[:4]
    for address in ORIGINAL_ADDRESSES:
        assert address.encode() not in data
    count = subprocess.run(["tshark", "-r", str(capture)], capture_output=True, text=True, check=True).stdout.splitlines()
    assert len(count) == 852

    report = json.loads(download(page, "JSON report", tmp_path).read_text())
    assert report["schema"] == "sipdiag.report/1" and report["capture"]["packets"] == 852
    assert not any(a in json.dumps(report) for a in ORIGINAL_ADDRESSES)

    html = download(page, "HTML report", tmp_path).read_text()
    assert "<svg" in html and "http" not in html.replace("http-equiv", "")

    mapping = download(page, "Mapping table", tmp_path).read_text().splitlines()
    assert mapping[0] == "category,original,replacement"
    assert {line.split(",")[1].strip('"') for line in mapping[1:] if line.startswith('"addresses"')} == set(ORIGINAL_ADDRESSES)

    summary = page.locator("#tab-panel .redact-summary").input_value()
    assert summary.startswith("sipdiag summary of") and "leaks: 0" in summary
    assert page_ready.foreign_requests() == []


def test_same_passphrase_in_page_and_cli_gives_the_same_capture(page_ready, tmp_path):
    """The page runs the CLI's engine: same passphrase and options, byte-identical output."""
    from sipdiag.redaction.redactor import redact_command

    page = page_ready.page
    open_capture(page, CAPTURE)
    page.locator('#tabs [data-tab="redact"]').click()
    page.locator("#tab-panel .redact-key").fill("same key")
    page.locator("#tab-panel .redact-start").click()
    page.locator("#tab-panel .redact-verified").wait_for(timeout=120_000)
    in_page = download(page, "Redacted capture", tmp_path)
    code, _ = redact_command(str(CAPTURE), str(tmp_path / "cli.pcap"), key="same key")
    assert code == 0
    assert in_page.read_bytes() == (tmp_path / "cli.pcap").read_bytes()



def open_redact_tab(page, path: Path) -> None:
    open_capture(page, path)
    page.locator('#tabs [data-tab="redact"]').click()


def fill_form(page, key: str, policy: str, options: dict) -> None:
    panel = page.locator("#tab-panel")
    panel.get_by_label("Passphrase").fill(key)
    page.check(f"#redact-policy-{policy}")
    for name, value in options.items():
        field = page.locator(f"#redact-{name}")
        if isinstance(value, bool):
            field.set_checked(value)
        else:
            field.fill("\n".join(value))


def cli_redact(path: Path, out: Path, key: str, options: dict | None = None, policy: str = "scrub") -> dict:
    from sipdiag.redaction.redactor import redact_command

    code, summary = redact_command(str(path), str(out), key=key, options=options, policy=policy)
    assert code == 0, summary
    return summary


def handled_counts(summary: dict) -> str:
    handled = summary["handled"]
    return f"{handled['rewritten']} rewritten, {handled['scrubbed']} scrubbed, {handled['dropped']} dropped"


@pytest.mark.parametrize("policy", ["scrub", "drop", "signalling"])
def test_page_writes_the_cli_bytes_for_each_policy(page_ready, tmp_path, policy):
    """Same key, options and policy on a capture with unread frames: the Redact tab's copy is the CLI's, byte for byte."""
    page = page_ready.page
    open_redact_tab(page, UNREAD)
    page.evaluate(WATCH_PHASES)
    # The labels the user reads name the engine's options.
    for label in ("Leave these addresses unmasked", "Also redact these strings",
                  "Also redact matches of these regular expressions", "Keep MAC vendor prefixes (OUI)"):
        assert page.locator("#tab-panel").get_by_label(label).count() == 1
    fill_form(page, "policy key", policy, FORM_OPTIONS)
    page.locator("#tab-panel .redact-start").click()
    page.locator("#tab-panel .redact-verified").wait_for(timeout=120_000)
    assert page.locator("#tab-panel .redact-status").inner_text().startswith("Verified: no original value found")
    in_page = download(page, "Redacted capture", tmp_path).read_bytes()

    expected = cli_redact(UNREAD, tmp_path / "cli.pcap", "policy key", FORM_OPTIONS, policy)
    assert expected["policy"] == policy and expected["rounds"] == 1
    assert expected["handled"]["scrubbed" if policy == "scrub" else "dropped"] > 0  # the unread frames count
    assert in_page == (tmp_path / "cli.pcap").read_bytes()
    assert ipaddress.ip_address(KEPT_ADDRESS).packed in in_page  # the options reached the engine
    assert handled_counts(expected) in page.locator("#tab-panel .redact-counts").inner_text()
    assert page.evaluate("window.redactPhases") == ["Starting…", "Learning names…", "Writing…", "Verifying…"]

    # Every scrubbed and dropped frame, with its reason, behind one disclosure.
    frames = page.locator("#tab-panel details.redact-frames")
    assert not frames.get_attribute("open") and "(%d)" % (expected["handled"]["scrubbed"] + expected["handled"]["dropped"]) in frames.inner_text()
    frames.locator("summary").click()
    rows = frames.locator("tbody tr").all_inner_texts()
    listed = [(f["frame"], "scrubbed", f["why"]) for f in expected["frames_scrubbed"]]
    listed += [(f["frame"], "dropped", f["why"]) for f in expected["frames_dropped"]]
    assert rows == [f"#{frame}\t{handled}\t{why}" for frame, handled, why in sorted(listed)]
    assert page_ready.foreign_requests() == []


def test_second_round_is_written_and_verified_as_the_cli_does(page_ready, tmp_path):
    """A leak only the verification sees (an address cut in two by the boundary
    of two SCTP DATA chunks, which the rewriter reads one by one) is scrubbed in a
    second write-and-verify round: the page runs that round too, says so, and
    writes the CLI's bytes."""
    from packet_builders import INVITE, OK_200, ethernet, ipv4, pcap, udp

    def sctp_data(piece: bytes, flags: int, tsn: int) -> bytes:
        value = struct.pack("!IHHI", tsn, 0, 0, 0) + piece  # TSN, stream, stream sequence, payload protocol 0
        chunk = struct.pack("!BBH", 0, flags, 4 + len(value)) + value
        return struct.pack("!HHII", 5060, 5060, 1, 0) + chunk + bytes(-len(chunk) % 4)

    cut = INVITE.index(b"c=IN IP4 10.0.0.1") + len(b"c=IN IP4 10.0.")
    packets = [ethernet(ipv4(sctp_data(INVITE[:cut], 2, 1), protocol=132)),
               ethernet(ipv4(sctp_data(INVITE[cut:], 1, 2), protocol=132)),
               ethernet(ipv4(udp(OK_200), src="10.0.0.2", dst="10.0.0.1"))]
    capture = tmp_path / "sctp-split-address.pcap"
    capture.write_bytes(pcap([(1_700_000_000 + n, 0, data, len(data)) for n, data in enumerate(packets)]))
    expected = cli_redact(capture, tmp_path / "cli.pcap", "round key")
    assert expected["rounds"] == 2 and expected["leaks"] == 0

    page = page_ready.page
    open_redact_tab(page, capture)
    page.evaluate(WATCH_PHASES)
    fill_form(page, "round key", "scrub", {})
    page.locator("#tab-panel .redact-start").click()
    page.locator("#tab-panel .redact-verified").wait_for(timeout=120_000)
    assert download(page, "Redacted capture", tmp_path).read_bytes() == (tmp_path / "cli.pcap").read_bytes()
    assert page.evaluate("window.redactPhases") == [
        "Starting…", "Learning names…", "Writing…", "Verifying…", "Writing (round 2)…", "Verifying (round 2)…"]
    assert "in 2 rounds" in page.locator("#tab-panel .redact-counts").inner_text()


def test_result_and_options_survive_a_tab_switch(page_ready, tmp_path):
    page = page_ready.page
    open_redact_tab(page, CAPTURE)
    fill_form(page, "switch key", "drop", {"keep_addresses": ["10.0.2.0/24"], "keep_oui": True})
    page.locator("#tab-panel .redact-start").click()
    # Leaving while it runs: the redaction goes on and its result is there on return.
    page.locator('#tabs [data-tab="calls"]').click()
    page.locator('#tabs [data-tab="redact"]').click()
    page.locator("#tab-panel .redact-verified").wait_for(timeout=120_000)
    first = download(page, "Redacted capture", tmp_path).read_bytes()
    for tab in ("findings", "messages", "redact"):
        page.locator(f'#tabs [data-tab="{tab}"]').click()
    panel = page.locator("#tab-panel")
    assert panel.locator(".redact-verified").is_visible()
    assert panel.get_by_label("Passphrase").input_value() == "switch key"
    assert page.is_checked("#redact-policy-drop") and page.is_checked("#redact-keep_oui")
    assert page.locator("#redact-keep_addresses").input_value() == "10.0.2.0/24"
    assert download(page, "Redacted capture", tmp_path).read_bytes() == first

    # Another capture starts afresh: nothing of the first one's result is offered.
    open_redact_tab(page, UNREAD)
    assert panel.locator(".redact-verified, .redact-download").count() == 0
    assert panel.get_by_label("Passphrase").input_value() == "" and page.is_checked("#redact-policy-scrub")


def test_invalid_cidr_is_named_next_to_its_field(page_ready):
    page = page_ready.page
    open_redact_tab(page, CAPTURE)
    page.locator("#redact-keep_addresses").fill("10.0.2.15\n10.0.0.0/33")
    page.locator("#tab-panel .redact-start").click()
    error = page.locator("#redact-keep_addresses-error")
    error.wait_for(timeout=60_000)
    message = error.inner_text()
    assert "10.0.0.0/33" in message and "\n" not in message and "Traceback" not in message
    assert page.locator("#redact-keep_addresses").get_attribute("aria-invalid") == "true"
    assert "Leave these addresses unmasked" in page.locator("#tab-panel .redact-status").inner_text()
    assert page.locator("#tab-panel .redact-download, #tab-panel .redact-verified").count() == 0
    # Corrected, the message goes and the redaction runs.
    page.locator("#redact-keep_addresses").fill("10.0.2.15")
    page.locator("#tab-panel .redact-start").click()
    page.locator("#tab-panel .redact-verified").wait_for(timeout=120_000)
    assert error.is_hidden()


def test_refusal_lists_the_frames_and_scrubbing_them_verifies(page_ready, tmp_path):
    page = page_ready.page
    open_redact_tab(page, UNREAD)
    fill_form(page, "refuse key", "refuse", {})
    page.locator("#tab-panel .redact-start").click()
    page.locator("#tab-panel .redact-refused").wait_for(timeout=120_000)
    from sipdiag.redaction.redactor import redact_command

    code, refused = redact_command(str(UNREAD), str(tmp_path / "refused.pcap"), key="refuse key", policy="refuse")
    assert code == 1 and refused["refused"] and not (tmp_path / "refused.pcap").exists()
    assert "nothing can be downloaded" in page.locator("#tab-panel .redact-status").inner_text()
    assert page.locator("#tab-panel .redact-download").count() == 0
    rows = page.locator("#tab-panel .redact-blockers tbody tr").all_inner_texts()
    frames = sorted({item["frame"] for item in refused["refused"] + refused["leak_locations"]})
    assert [row.split("\t")[0] for row in rows] == [f"#{frame}" for frame in frames]
    first = refused["refused"][0]
    assert f"not read: {first['why']}" in rows[frames.index(first["frame"])]
    resolve = page.locator("#tab-panel .redact-resolve")
    assert resolve.all_inner_texts() == ["Scrub these frames and try again", "Drop them", "Keep only signalling"]

    page.locator("#tab-panel button", has_text="Scrub these frames and try again").click()
    page.locator("#tab-panel .redact-verified").wait_for(timeout=120_000)
    assert page.is_checked("#redact-policy-scrub")
    in_page = download(page, "Redacted capture", tmp_path).read_bytes()
    cli_redact(UNREAD, tmp_path / "cli.pcap", "refuse key", policy="scrub")
    assert in_page == (tmp_path / "cli.pcap").read_bytes()


def test_after_a_file_that_is_no_capture_nothing_is_offered_to_redact(page_ready, tmp_path):
    page = page_ready.page
    open_redact_tab(page, CAPTURE)
    notes = tmp_path / "notes.txt"
    notes.write_text("not a capture\n")
    page.set_input_files("#file-input", str(notes))
    page.locator("#engine-status", has_text="could not analyze notes.txt").wait_for(timeout=60_000)
    assert "notes.txt" in page.locator("#error").inner_text()
    assert page.is_hidden("#result")
    assert page.locator("#tabs button").count() == 0
    assert page.locator("#tab-panel *").count() == 0
