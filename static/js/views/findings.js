// Findings panel: the diagnosis, most severe first, each expandable to its
// explanation, next steps and the frames that prove it. The registrations and
// DNS views reuse `findingList` and `frameLinks` for their related findings.

import { el } from "./dom.js";

const SEVERITY_ORDER = { error: 0, warning: 1, info: 2 };
// Evidence links shown per finding; the report keeps every frame.
const MAX_FRAME_LINKS = 40;

// Buttons that open each frame where it is shown (a SIP message, a DNS query,
// a network event, an RTP stream: the shell's router decides).
export function frameLinks(frames, api) {
  const span = el("span", { className: "finding-frames" });
  for (const frame of frames.slice(0, MAX_FRAME_LINKS)) {
    const link = el("button", { type: "button", className: "finding-frame", "data-frame": frame }, `#${frame}`);
    link.addEventListener("click", (event) => {
      event.stopPropagation();
      api.openFrame(frame);
    });
    span.append(link, " ");
  }
  if (frames.length > MAX_FRAME_LINKS) span.append(`and ${frames.length - MAX_FRAME_LINKS} more frames`);
  return span;
}

// The finding's call ladder or registration row (else its messages).
function callLink(callId, api) {
  const link = el("button", { type: "button", className: "finding-call", "data-call-id": callId }, `Call-ID ${callId}`);
  link.addEventListener("click", (event) => {
    event.stopPropagation();
    api.openCall(callId);
  });
  return link;
}

// No Math.min(...frames): a finding about a flood may cite more frames than a call can take arguments.
function firstFrame(finding) {
  return finding.frames.reduce((lowest, frame) => Math.min(lowest, frame), Infinity);
}

export function sortFindings(findings) {
  return [...findings].sort(
    (a, b) =>
      SEVERITY_ORDER[a.severity] - SEVERITY_ORDER[b.severity] ||
      firstFrame(a) - firstFrame(b),
  );
}

function findingItem(finding, api) {
  const item = el("details", { className: `finding finding-${finding.severity}`, "data-code": finding.code });
  item.append(
    el(
      "summary",
      { className: "finding-head" },
      el("span", { className: `finding-severity finding-severity-${finding.severity}` }, finding.severity),
      el("code", { className: "finding-code" }, finding.code),
      el("span", { className: "finding-summary" }, finding.summary),
    ),
    el("p", { className: "finding-explanation" }, finding.explanation),
  );
  if (finding.next_steps.length) {
    item.append(
      el("h4", { className: "finding-subhead" }, "Next steps"),
      el("ol", { className: "finding-steps" }, finding.next_steps.map((step) => el("li", {}, step))),
    );
  }
  const facts = [];
  if (finding.status !== undefined) facts.push(`status ${finding.status}`);
  if (finding.call_id !== undefined) facts.push(callLink(finding.call_id, api));
  if (facts.length) item.append(el("p", { className: "finding-facts" }, facts.flatMap((fact, i) => (i ? [" · ", fact] : [fact]))));
  if (finding.frames.length) {
    item.append(el("p", { className: "finding-evidence" }, "Evidence: ", frameLinks(finding.frames, api)));
  }
  return item;
}

export function findingList(findings, api) {
  const list = el("div", { className: "finding-list" });
  for (const finding of sortFindings(findings)) list.append(findingItem(finding, api));
  return list;
}

export function render(report, container, api) {
  container.replaceChildren();
  const findings = report.findings;
  const counts = { error: 0, warning: 0, info: 0 };
  for (const finding of findings) counts[finding.severity] += 1;
  container.append(
    el(
      "p",
      { className: "finding-counts" },
      Object.entries(counts).map(([severity, count]) =>
        el("span", { className: `finding-count finding-severity-${severity}` }, `${count} ${severity}${count === 1 || severity === "info" ? "" : "s"}`),
      ),
    ),
  );
  if (!findings.length) {
    container.append(el("p", { className: "finding-none" }, "No problems found in this capture."));
    return;
  }
  container.append(findingList(findings, api));
}
