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

function findingCounts(findings) {
  const bySeverity = { error: 0, warning: 0, info: 0 };
  for (const finding of findings) bySeverity[finding.severity] = (bySeverity[finding.severity] ?? 0) + 1;
  return `${findings.length} (${bySeverity.error} errors, ${bySeverity.warning} warnings, ${bySeverity.info} info)`;
}

export function render(report, container) {
  const capture = report.capture;
  const rows = [
    ["File", capture.file],
    ["Format", capture.format ?? "unknown"],
    ["Packets", capture.packets],
    ["Link types", capture.link_types.join(", ") || "—"],
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
