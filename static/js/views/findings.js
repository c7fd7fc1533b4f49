// Findings panel: the diagnosis as the report orders it, one finding per
// cause, the causes that explain others first with those under them. Each
// finding opens to its explanation, next steps, its instances (the calls,
// registrations or lookups it concerns, each expandable to its own evidence)
// and the frames that prove it. The calls, registrations and DNS views reuse
// `findingList`, `findingsAbout` and `frameLinks` for their related findings.

import { el } from "./dom.js";

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

// The finding's call ladder or registration row (else its messages). `label`
// replaces "Call-ID ..." where the text around names the Call-ID already.
function callLink(callId, api, label = null) {
  const link = el("button", { type: "button", className: "finding-call", "data-call-id": callId,
    ...(label ? { "aria-label": `${label} (Call-ID ${callId})` } : {}) }, label ?? `Call-ID ${callId}`);
  link.addEventListener("click", (event) => {
    event.stopPropagation();
    api.openCall(callId);
  });
  return link;
}

// The status and Call-ID (a link to its call or registration) of a finding or
// an instance, for its facts line.
function facts(instance, api) {
  const items = [];
  if (instance.status !== undefined) items.push(`status ${instance.status}`);
  if (instance.call_id !== undefined) {
    // A call's instance names its Call-ID in its summary already: the link needs no second copy.
    const named = instance.summary?.includes(`(Call-ID ${instance.call_id})`);
    items.push(callLink(instance.call_id, api, named ? "Open" : null));
  }
  return items.length ? el("p", { className: "finding-facts" }, items.flatMap((item, i) => (i ? [" · ", item] : [item]))) : null;
}

// One instance (a call, registration, lookup or destination) of a cause, expandable to its evidence.
function instanceItem(instance, api) {
  const item = el(
    "details",
    { className: "finding-instance" },
    el("summary", { className: "finding-instance-head" }, instance.summary),
  );
  if (instance.explanation !== undefined) item.append(el("p", { className: "finding-explanation" }, instance.explanation));
  const factsLine = facts(instance, api);
  if (factsLine) item.append(factsLine);
  if (instance.frames.length) item.append(el("p", { className: "finding-evidence" }, "Evidence: ", frameLinks(instance.frames, api)));
  return el("li", {}, item);
}

function findingItem(finding, api) {
  const item = el("details", { className: `finding finding-${finding.severity}`, "data-code": finding.code, "data-id": finding.id });
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
  const factsLine = facts(finding, api);
  if (factsLine) item.append(factsLine);
  // One instance is the finding itself; several are listed, each naming its call or registration.
  if (finding.count > 1) {
    item.append(
      el("h4", { className: "finding-subhead" }, `Instances (${finding.count})`),
      el("ul", { className: "finding-instances" }, finding.instances.map((instance) => instanceItem(instance, api))),
    );
  }
  if (finding.frames.length) {
    item.append(el("p", { className: "finding-evidence" }, "Evidence: ", frameLinks(finding.frames, api)));
  }
  return item;
}

// The findings in report order (each cause, then what it explains), each cause
// with the findings it explains under it. A view may pass a subset: a finding
// whose cause is not in it stands alone.
export function findingList(findings, api) {
  const list = el("div", { className: "finding-list" });
  const shown = new Set(findings.map((finding) => finding.id));
  const explainedHere = (finding) => finding.explained_by !== undefined && shown.has(finding.explained_by);
  const byId = new Map(findings.map((finding) => [finding.id, finding]));
  for (const finding of findings) {
    if (explainedHere(finding)) continue;
    const explained = (finding.explains ?? []).filter((id) => shown.has(id)).map((id) => byId.get(id));
    if (!explained.length) {
      list.append(findingItem(finding, api));
      continue;
    }
    list.append(
      el(
        "div",
        { className: "finding-cause" },
        findingItem(finding, api),
        el(
          "div",
          { className: "finding-explained", role: "group", "aria-label": `Explained by ${finding.code}` },
          el("p", { className: "finding-explained-head" }, "Explained by the cause above:"),
          explained.map((other) => findingItem(other, api)),
        ),
      ),
    );
  }
  return list;
}

// The findings about one call or registration: those with an instance that names its Call-ID.
export function findingsAbout(findings, callId) {
  return findings.filter((finding) => finding.call_id === callId || finding.instances.some((i) => i.call_id === callId));
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
