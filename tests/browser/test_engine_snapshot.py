"""The engine snapshot (static/js/worker.js): the first start keeps Pyodide's
memory, with the engine imported and no capture seen, in the site's IndexedDB;
the next start of the same build restores it and works exactly as a fresh
start does. A snapshot of another build, or one that will not restore, is
never used: the engine starts from scratch and keeps a new one."""

from __future__ import annotations

import base64

import pytest
from locations import SHARED_CAPTURES
from pagekit import analyze_in_page, cli_report, open_page, wait_for_api

CAPTURES = [SHARED_CAPTURES / "pcapplusplus__sip_resp.pcap", SHARED_CAPTURES / "heplify__sip_ipv4_tcp.pcap"]

WAIT_FOR_SNAPSHOT = """() => new Promise((resolve) => {
  const check = () => (window.sipdiag.boot.snapshot !== null ? resolve(window.sipdiag.boot.snapshot) : setTimeout(check, 20));
  check();
})"""

# What the engine does with a capture besides its report, each through a module
# the worker imports after ready (and the snapshot holds): a ladder, the HTML
# report, the first RTP stream measured, a redaction with a passphrase.
ENGINE_OUTPUTS = """async ([name, data]) => {
  const file = new File([Uint8Array.from(atob(data), (c) => c.charCodeAt(0))], name);
  const report = await window.sipdiag.analyze(file);
  const ladder = await window.sipdiag.ladder(report);
  const html = await window.sipdiag.htmlReport(report);
  const media = report.calls.flatMap((call) => call.media)[0];
  const stream = await window.sipdiag.rtpStream(file, { src: media.src, dst: media.dst, ssrc: media.ssrc });
  const { blob, summary } = await window.sipdiag.redact(file, { key: "team passphrase" });
  const redacted = new Uint8Array(await blob.arrayBuffer());
  return { ladder, html, stream: stream.summary, summary,
           redacted: btoa(Array.from(redacted, (b) => String.fromCharCode(b)).join("")) };
}"""

# A redaction with no passphrase (a random key): the redacted copy's bytes.
RANDOM_KEY_REDACTION = """async ([name, data]) => {
  const file = new File([Uint8Array.from(atob(data), (c) => c.charCodeAt(0))], name);
  const { blob } = await window.sipdiag.redact(file, { key: null });
  const redacted = new Uint8Array(await blob.arrayBuffer());
  return btoa(Array.from(redacted, (b) => String.fromCharCode(b)).join(""));
}"""

# Changes the kept snapshot record as the page's origin can (the worker shares its IndexedDB).
ALTER_RECORD = """async (how) => {
  const db = await new Promise((resolve, reject) => {
    const opening = indexedDB.open("sipdiag-engine", 1);
    opening.onsuccess = () => resolve(opening.result);
    opening.onerror = () => reject(opening.error);
  });
  const store = () => db.transaction("snapshot", "readwrite").objectStore("snapshot");
  const record = await new Promise((resolve) => (store().get("engine").onsuccess = (event) => resolve(event.target.result)));
  if (how === "another engine") {
    record.engine = record.engine.slice();
    record.engine[record.engine.length - 1] ^= 1;  // one byte of the engine archive differs
  } else if (how === "another standard library") {
    record.stdlib = record.stdlib.slice();
    record.stdlib[record.stdlib.length - 1] ^= 1;
  } else if (how === "cut short") {
    record.memory = record.memory.slice(0, record.memory.length - 65536 - 100);
  } else {
    record.memory = record.memory.slice();
    record.memory[16] ^= 1;  // another Pyodide build's id in the header: Pyodide refuses to restore it
  }
  await new Promise((resolve) => (store().put(record, "engine").onsuccess = resolve));
  db.close();
}"""


def restart(booted) -> str:
    """Load the page again in its browser context: the engine snapshot's fate on this start."""
    booted.page.goto(booted.url)
    wait_for_api(booted.page)
    booted.page.evaluate("window.sipdiag.ready")
    return booted.page.evaluate(WAIT_FOR_SNAPSHOT)


def engine_outputs(booted, path) -> dict:
    return booted.page.evaluate(ENGINE_OUTPUTS, [path.name, base64.b64encode(path.read_bytes()).decode()])


@pytest.fixture(params=["http", "file"])
def first_start(request, browser, site):
    """A page's first start in a fresh browser context, its snapshot kept."""
    booted = open_page(browser, site.base_url if request.param == "http" else site.single_file_url)
    assert booted.page.evaluate(WAIT_FOR_SNAPSHOT) == "stored"
    yield booted
    booted.page.context.close()


def test_the_next_start_restores_the_snapshot_and_works_as_a_fresh_one(first_start, sample_capture):
    fresh = engine_outputs(first_start, sample_capture)
    assert restart(first_start) == "restored"
    phases = [name for name, _ in first_start.page.evaluate("window.sipdiag.boot.phases")]
    assert "interpreter restored" in phases and "interpreter started" not in phases
    for path in CAPTURES:
        assert analyze_in_page(first_start, path) == cli_report(path)
    assert engine_outputs(first_start, sample_capture) == fresh
    assert first_start.foreign_requests() == []
    assert [text for text in first_start.console_errors if "Content Security Policy" in text] == []


def test_a_random_redaction_key_is_not_frozen_into_the_snapshot(first_start, sample_capture):
    data = [sample_capture.name, base64.b64encode(sample_capture.read_bytes()).decode()]
    copies = []
    for _ in range(2):
        assert restart(first_start) == "restored"
        copies.append(first_start.page.evaluate(RANDOM_KEY_REDACTION, data))
    assert copies[0] != copies[1]


@pytest.mark.parametrize("how", ["another engine", "another standard library", "cut short", "another Pyodide build"])
def test_a_snapshot_that_is_not_this_builds_is_never_used(first_start, how):
    first_start.page.evaluate(ALTER_RECORD, how)
    # Started from scratch, it keeps a snapshot of its own, which the start after restores.
    assert restart(first_start) == "stored"
    phases = [name for name, _ in first_start.page.evaluate("window.sipdiag.boot.phases")]
    assert "interpreter started" in phases and "interpreter restored" not in phases
    path = CAPTURES[0]
    assert analyze_in_page(first_start, path) == cli_report(path)
    assert restart(first_start) == "restored"
    assert analyze_in_page(first_start, path) == cli_report(path)
