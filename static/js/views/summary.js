// The capture at a glance: what the file is, what it spans, what the engine
// could not read, and how much of each kind of thing it found.

import { el, isoTime, TIME_OUT_OF_RANGE } from "./dom.js";

export function formatTime(epochSeconds) {
  if (epochSeconds === null || epochSeconds === undefined) return "—";
  const iso = isoTime(epochSeconds);
  return iso === null ? TIME_OUT_OF_RANGE : iso.replace("T", " ").replace("Z", " UTC");
}

function span(capture) {
  if (capture.first_time === null || capture.last_time === null) return "no packets";
  const seconds = capture.last_time - capture.first_time;
  return `${formatTime(capture.first_time)} → ${formatTime(capture.last_time)} (${seconds.toFixed(3)} s)`;
}

// pcap LINKTYPE numbers by name: the ones the engine reads, and a few it may meet.
const LINK_TYPES = {
  0: "BSD loopback",
  1: "Ethernet",
  9: "PPP",
  12: "Raw IP",
  14: "Raw IP",
  50: "PPP in HDLC framing",
  101: "Raw IP",
  104: "Cisco HDLC",
  105: "Wi-Fi (IEEE 802.11)",
  108: "OpenBSD loopback",
  113: "Linux cooked capture",
  127: "Wi-Fi with radiotap header",
  228: "Raw IPv4",
  229: "Raw IPv6",
  239: "Linux netfilter log (NFLOG)",
  276: "Linux cooked capture v2",
};

// 147-162 are the DLT_USER range: the file does not say what they carry.
function linkTypeName(number) {
  if (number >= 147 && number <= 162) return `user-defined link type ${number - 147} (DLT ${number})`;
  return LINK_TYPES[number] ?? `link type ${number}`;
}

function findingCounts(findings) {
  if (!findings.length) return "none";
  const bySeverity = { error: 0, warning: 0, info: 0 };
  for (const finding of findings) bySeverity[finding.severity] = (bySeverity[finding.severity] ?? 0) + 1;
  const errors = `${bySeverity.error} error${bySeverity.error === 1 ? "" : "s"}`;
  const warnings = `${bySeverity.warning} warning${bySeverity.warning === 1 ? "" : "s"}`;
  return `${findings.length} (${errors}, ${warnings}, ${bySeverity.info} info)`;
}

export function render(report, container) {
  const capture = report.capture;
  const rows = [
    ["File", capture.file],
    ["Format", capture.format ?? "unknown"],
    ["Packets", capture.packets],
    [capture.link_types.length > 1 ? "Link layers" : "Link layer", [...new Set(capture.link_types.map(linkTypeName))].join(", ") || "—"],
    ["Time span", span(capture)],
    ["SIP messages", report.sip_messages.length],
    ["Registrations", report.registrations.length],
    ["Calls", report.calls.length],
    ["DNS queries", report.dns.length],
    ["Findings", findingCounts(report.findings)],
  ];
  container.append(
    el("h2", {}, "Capture"),
    el("dl", { className: "summary", id: "capture-summary" }, rows.map(([name, value]) => [el("dt", {}, name), el("dd", {}, value)])),
  );
  if (capture.warnings.length) {
    container.append(
      el("h3", {}, `Warnings (${capture.warnings.length})`),
      el("ul", { className: "warnings" }, capture.warnings.map((warning) => el("li", {}, warning))),
    );
  }
}
