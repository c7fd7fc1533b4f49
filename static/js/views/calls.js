// Calls tab: the RFC 6076 figures per trunk, a filterable table of calls;
// selecting one shows its timing, DTMF and the other legs of its call, and
// the engine's ladder of it (views/ladder.js): of the dialog, of all the
// call's legs, or of all SIP, with the clicked message in a side panel, the
// diff of two messages, and SVG/PNG export.

import { activatable, dataTable, delayText, el, elided, indexInFrame, isoTime, labelled, ratioText, TIME_OUT_OF_RANGE, workerTable, words } from "./dom.js";
import { findingList, findingsAbout, frameLinks } from "./findings.js";
import { diffView, ladderElement, markArrows, messageDiff, messageText, pngBlob, svgBlob, wireArrows } from "./ladder.js";

const COLUMNS = [
  { label: "Time", column: "time" },
  { label: "From", column: "from" },
  { label: "To", column: "to" },
  { label: "Outcome", column: "outcome" },
  { label: "Status", column: "final_status" },
  { label: "Findings", column: "findings" },
  { label: "Media →", column: "media_forward" },
  { label: "Media ←", column: "media_back" },
  { label: "MOS →", column: "mos_forward" },
  { label: "MOS ←", column: "mos_back" },
  { label: "Post-dial delay", column: "post_dial_delay" },
  { label: "Setup time", column: "setup_time" },
  { label: "Duration", column: "duration" },
  { label: "Codecs", column: "codecs" },
];
const TRUNK_COLUMNS = ["Trunk", "Session requests", "SER", "SEER", "ISA", "SCR", "SRD (successful)", "SRD (failed)",
  "SDD"];
const DTMF_COLUMNS = ["Digit", "Sent as", "Frame", "Time", "Duration", "Volume", "From → to"];
const MEDIA_COLUMNS = ["Direction", "Source → destination", "Codec", "Packets", "Lost", "Jitter", "MOS (estimate)",
  "Frames"];
// The spec's outcomes: a fixed list, so the page need not scan the calls for them.
const OUTCOMES = ["answered", "busy", "cancelled", "rejected", "redirected", "no_answer", "no_response"];
const SEVERITIES = ["error", "warning", "info"];

function when(seconds) {
  const iso = isoTime(seconds);
  return iso === null ? TIME_OUT_OF_RANGE : iso.replace("T", " ").slice(0, 23);
}

function ms(value) {
  return value === null ? "–" : `${value} ms`;
}

// Seconds from ACK (or the 200) to BYE; a call still up when the capture ended lasted at least that long.
function duration(timing) {
  if (timing.duration_s === null) return "–";
  return timing.duration_end === "capture_end" ? `≥ ${timing.duration_s} s` : `${timing.duration_s} s`;
}

function durationFact(timing) {
  if (timing.duration_s === null) return "–";
  const end = timing.duration_end === "bye" ? "BYE" : "the capture's end (no BYE)";
  return `${timing.duration_s} s (${timing.duration_start === "ack" ? "ACK" : "200"} → ${end})`;
}

// One direction's RTP (report_tables' summary: packets and loss summed, worst
// jitter), a line each. A direction without RTP while the other has some is
// one-way audio: say so.
function mediaText(summary, otherWay, missingText) {
  if (!summary) return otherWay ? missingText : "no media";
  const loss = summary.lost && summary.expected ? ` (${((100 * summary.lost) / summary.expected).toFixed(1)} %)` : "";
  return [`${summary.packets} pkts`, `${summary.lost} lost${loss}`, `jitter ${summary.jitter_ms} ms`]
    .map((line) => el("span", { className: "call-media-line" }, line));
}

function findingsCell(derived) {
  if (!derived.findings) return el("td", {}, "none");
  return el("td", {}, el("span", { className: `finding-severity finding-severity-${derived.worst_severity}` },
    derived.worst_severity), ` ${derived.findings}`);
}

function callRow({ row: call, derived }, open) {
  const { forward, back } = derived;
  const row = el("tr", { className: `call-row call-outcome-${call.outcome}` },
    el("td", {}, when(call.start_time)),
    elided(call.from_uri),
    elided(call.to_uri),
    el("td", {}, call.outcome.replace("_", " ")),
    el("td", {}, call.final_status ?? "–"),
    findingsCell(derived),
    el("td", { className: !forward && back ? "call-media-missing" : "" }, mediaText(forward, Boolean(back), "none from the caller")),
    el("td", { className: !back && forward ? "call-media-missing" : "" }, mediaText(back, Boolean(forward), "no media back")),
    el("td", { className: "num" }, forward?.mos ?? "–"),
    el("td", { className: "num" }, back?.mos ?? "–"),
    el("td", {}, ms(call.timing.post_dial_delay_ms)),
    el("td", {}, ms(call.timing.setup_time_ms)),
    el("td", {}, duration(call.timing)),
    elided((call.codecs_answered?.length ? call.codecs_answered : call.codecs_offered ?? []).join(", "), "call-codecs"));
  return activatable(row, () => open(row, call, true));
}

// What render() drew in each panel, for select().
const drawn = new WeakMap();

export function render(report, container, api) {
  if (!report.calls.length) {
    container.append(el("p", { className: "empty" }, "No calls (INVITE dialogs) in this capture."));
    // The registrations, OPTIONS and the rest still make a flow graph.
    if (report.sip_messages.length) container.append(el("h3", {}, "Every SIP message"), ladderSection(report, null, api));
    return;
  }
  const search = el("input", { type: "search", className: "call-filter", placeholder: "number, user or Call-ID" });
  const outcome = el("select", { className: "call-outcome-filter" }, el("option", { value: "" }, "all outcomes"),
    OUTCOMES.map((o) => el("option", { value: o }, o.replace("_", " "))));
  const severity = el("select", { className: "call-severity-filter" }, el("option", { value: "" }, "any"),
    SEVERITIES.map((s) => el("option", { value: s }, `worst is ${s}`)));
  const detail = el("div", { className: "call-detail", tabIndex: -1 });
  // userAction: a click or Enter (the URL follows); select() and the lone call open without one.
  const open = (row, call, userAction) => {
    for (const other of table.table.tBodies[0].rows) other.classList.toggle("call-selected", other === row);
    showCall(report, call, detail, api);
    if (userAction) {
      api.selected("call", call.call_id);
      detail.scrollIntoView({ block: "start" });
    }
  };
  const shown = new Map(); // Call-ID -> the call row of the page on screen
  const table = workerTable({ className: "calls call-table", table: "calls", columns: COLUMNS, api,
    makeRow: (entry) => {
      shown.set(entry.row.call_id, entry.row);
      return callRow(entry, open);
    } });
  const applyFilter = () => table.setQuery({ filters: { outcome: outcome.value, severity: severity.value }, search: search.value });
  search.addEventListener("input", applyFilter);
  outcome.addEventListener("change", applyFilter);
  severity.addEventListener("change", applyFilter);
  container.append(
    ...trunkTable(report.trunks),
    el("h3", { className: "call-heading" }, `Calls (${report.calls.length})`),
    el("div", { className: "call-filters" }, labelled("Search", search), " ", labelled("Outcome", outcome), " ",
      labelled("Findings", severity)),
    table.element,
    el("p", { className: "call-note" }, "Media → is RTP from the caller to the callee, ← the way back (packets, lost, "
      + "mean jitter; MOS is an E-model estimate from that direction's measured loss and jitter)."),
    detail,
  );
  drawn.set(container, { table, open, detail, shown, reset: () => {
    search.value = outcome.value = severity.value = "";
    return applyFilter();
  } });
  if (report.calls.length === 1) {
    table.show(report.calls[0].call_id).then((row) => row && open(row, report.calls[0], false));
  }
}

// #calls/call/<Call-ID> opens that call's ladder; #calls/frame/N the call
// whose RTP stream holds frame N, its media row shown (until an RTP tab does it).
export async function select(container, kind, value, api) {
  const view = drawn.get(container);
  if (!view) return null;
  let callId = value;
  let stream = null;
  if (kind === "frame") {
    const where = await api.locate({ frame: Number(value) });
    if (!where?.call_id) return null;
    ({ call_id: callId, stream } = where);
  } else if (kind !== "call") {
    return null;
  }
  let row = await view.table.show(callId);
  if (!row && view.table.narrowed) {
    await view.reset();
    row = await view.table.show(callId);
  }
  if (!row) return null;
  view.open(row, view.shown.get(callId), false);
  if (stream === null) return view.detail;
  const media = view.detail.querySelector(`.call-media-row[data-stream="${stream}"]`);
  media?.classList.add("row-selected");
  return media ?? view.detail;
}

// RFC 6076 per pair of signalling endpoints: ratios over the session requests
// whose outcome the capture shows, delays over those measured.
function trunkCells(trunk) {
  const metrics = trunk.rfc6076;
  const requestDelay = metrics.session_request_delay_ms;
  const disconnect = metrics.session_disconnect_delay_ms;
  return [
    trunk.endpoints.join(" ↔ "),
    trunk.in_progress ? `${trunk.session_requests} (${trunk.in_progress} in progress)` : String(trunk.session_requests),
    ratioText(metrics.session_establishment_ratio),
    ratioText(metrics.session_establishment_effectiveness_ratio),
    ratioText(metrics.ineffective_session_attempts),
    ratioText(metrics.session_completion_ratio),
    delayText(requestDelay.successful),
    delayText(requestDelay.failed),
    delayText(disconnect.successful) + (disconnect.failed ? `, ${disconnect.failed} unanswered` : ""),
  ];
}

function trunkTable(trunks) {
  if (!trunks.length) return [];
  return [
    el("h3", { className: "call-heading" }, "Trunks (RFC 6076)"),
    dataTable("trunk-table", TRUNK_COLUMNS, trunks.map((trunk) => el("tr", { className: "trunk-row" },
      trunkCells(trunk).map((value) => el("td", {}, value))))),
    el("p", { className: "call-note" },
      "A trunk is a pair of signalling endpoints; each INVITE leg is one session request. SER: answered / requests "
      + "less redirected. SEER: answered, or 480/486/600/603, / the same. ISA: 408/500/503/504 / requests. SCR: "
      + "answered and ended by a BYE that got its 2xx / requests. SRD: INVITE → first ringing or progress (else the "
      + "200), or → the 4xx/5xx. SDD: BYE → its 2xx. Requests the capture ended before deciding are left out."),
  ];
}

// The call's RTP streams, one row each; an RTP evidence frame opens on its stream's row.
function mediaTable(call, api) {
  const rows = call.media.map((stream, index) => el("tr", { className: "call-media-row", "data-stream": index, tabIndex: 0 },
    el("td", {}, stream.direction === "caller_to_callee" ? "→ caller to callee" : "← callee to caller"),
    el("td", {}, `${stream.src} → ${stream.dst}`),
    el("td", {}, stream.codec ?? "–"),
    el("td", { className: "num" }, stream.packets),
    el("td", { className: "num" }, stream.lost),
    el("td", {}, `${stream.jitter_ms} ms`),
    el("td", { className: "num" }, stream.mos_estimate ?? "–"),
    el("td", {}, `${stream.first_frame}–${stream.last_frame}`, stream.sdp_frame ? [" (SDP ", frameLinks([stream.sdp_frame], api), ")"] : "")));
  return dataTable("call-media", MEDIA_COLUMNS, rows);
}

function dtmfTable(call, api) {
  const rows = call.dtmf.map((digit) => el("tr", { className: "call-dtmf-row" },
    el("td", {}, digit.digit),
    el("td", {}, digit.source === "rfc4733" ? `RFC 4733${digit.ended ? "" : " (no end packet)"}` : "SIP INFO"),
    // An INFO opens in the SIP messages tab, an RTP event packet on its stream.
    el("td", {}, frameLinks([digit.frame], api)),
    el("td", {}, `+${(digit.time - call.start_time).toFixed(3)} s`),
    el("td", {}, ms(digit.duration_ms)),
    el("td", {}, digit.volume === null ? "–" : `−${digit.volume} dBm0`),
    el("td", {}, `${digit.src} → ${digit.dst}`)));
  return el("table", { className: "call-dtmf" },
    el("thead", {}, el("tr", {}, DTMF_COLUMNS.map((name) => el("th", {}, name)))),
    el("tbody", {}, rows));
}

function showCall(report, call, detail, api) {
  const findings = findingsAbout(report.findings, call.call_id);
  const { timing } = call;
  const facts = [
    ["Caller → callee", `${call.caller} → ${call.callee}`],
    ["Post-dial delay (INVITE → 180/183)", ms(timing.post_dial_delay_ms)],
    ["Setup time (INVITE → 200)", ms(timing.setup_time_ms)],
    ["200 → ACK", ms(timing.answer_to_ack_ms)],
    ["Duration", durationFact(timing)],
    ["Failed after", timing.failure_ms == null ? "–" : `${timing.failure_ms} ms (${timing.failure_status})`],
    ["Ended by", call.ended_by ? `${call.ended_by}${call.bye_reason ? ` (${call.bye_reason})` : ""}` : "–"],
    ["INVITE legs", call.legs.map((leg) => `${leg.caller} → ${leg.callee}: ${leg.final_status ?? "no final answer"}`).join("; ")],
    ["Events", call.events.map((e) => `#${e.frame} ${e.text}`).join("; ") || "–"],
  ];
  detail.replaceChildren(
    el("h3", {}, `Call ${call.call_id}`),
    el("dl", { className: "call-facts" }, facts.map(([term, value]) => [el("dt", {}, term), el("dd", {}, value)])),
    ...callLegs(report, call, api),
    ...(call.media.length ? [el("h4", {}, `Media (${call.media.length})`), mediaTable(call, api)] : []),
    ...(call.dtmf.length ? [el("h4", {}, `DTMF (${call.dtmf.length})`), dtmfTable(call, api)] : []),
    ...(findings.length ? [findingList(findings, api)] : []), // replaceChildren would print a null
    ladderSection(report, call, api),
    el("p", { className: "call-note" }, "MOS values are E-model estimates from loss, jitter and codec, not measurements."),
  );
}

// The dialogs of the call this one is a leg of (report call_groups), in the group's order.
function groupCalls(report, call) {
  const group = (report.call_groups ?? []).find((g) => g.id === call.group);
  return group ? group.calls.map((id) => report.calls.find((c) => c.call_id === id)).filter(Boolean) : [call];
}

// A call through a B2BUA/PBX/SBC as its legs: each dialog, how it was tied to
// this one, and a button that opens it (its row stays in the table).
function callLegs(report, call, api) {
  const legs = groupCalls(report, call);
  if (legs.length < 2) return [];
  const ties = new Map((call.group_links ?? []).map((link) => [link.call_id, link]));
  const items = legs.map((leg) => {
    const what = `${leg.caller} → ${leg.callee}, ${words(leg.outcome)} (${leg.from_uri ?? "?"} → ${leg.to_uri ?? "?"})`;
    if (leg === call) return el("li", { className: "call-leg call-leg-this" }, el("strong", {}, "this dialog: "), what);
    const tie = ties.get(leg.call_id);
    const open = el("button", { type: "button", className: "call-leg-open" }, leg.call_id);
    open.addEventListener("click", () => api.openCall(leg.call_id));
    return el("li", { className: "call-leg" }, open, " ", what,
      tie ? el("span", { className: "call-leg-tie" }, ` · tied by ${words(tie.by)}: ${tie.evidence}`) : null);
  });
  return [el("h4", {}, `This call's legs (${legs.length})`), el("ul", { className: "call-legs" }, items)];
}

const SCOPES = { dialog: "this dialog", legs: "the call's legs", all: "every SIP message" };

// The ladder the engine draws (views/ladder.js puts it in the page): this
// dialog, the legs of its call, or all SIP (only that without a call); a
// clicked arrow's message in the side panel, Shift and a second arrow
// compares the two.
function ladderSection(report, call, api) {
  const legs = call ? groupCalls(report, call) : [];
  const offered = Object.entries(SCOPES).filter(([value]) => (call || value === "all") && (value !== "legs" || legs.length > 1));
  const scope = el("select", { className: "ladder-scope" },
    offered.map(([value, text]) => el("option", { value }, value === "legs" ? `${text} (${legs.length})` : text)));
  scope.value = !call ? "all" : legs.length > 1 ? "legs" : "dialog";
  const columns = el("select", { className: "ladder-columns" },
    el("option", { value: "host" }, "one per host"), el("option", { value: "port" }, "one per IP:port"));
  const collapse = el("input", { type: "checkbox", className: "ladder-collapse" });
  const figure = el("div", { className: "ladder-scroll" });
  // Focusable: on a wide screen it scrolls by itself, and the keyboard must reach that too.
  // Not a live region: a whole SIP message read out at every click would drown the arrow's own state.
  const panel = el("div", { className: "ladder-panel", tabIndex: 0, role: "region", "aria-label": "Selected message" },
    el("p", { className: "ladder-hint" },
      "Select an arrow (click, or Enter) to read its message here; Shift with a second arrow compares the two."));
  // An arrow names its frame; of a frame's several messages (one packet, several), the last is shown.
  const byFrame = new Map(report.sip_messages.map((message, position) => [message.frame, position]));
  const name = call ? `call-${call.call_id.replace(/[^A-Za-z0-9._-]/g, "_").slice(0, 40)}` : "sip-flow";
  let svgText = null;
  let svg = null;
  let selected = null;
  let compared = null;
  let drawing = 0; // the latest request wins when options change quickly

  // The report has no message text: the worker reads the selected messages from the file.
  const textAt = (position) => api.messageText(report.sip_messages[position].frame,
    indexInFrame(report.sip_messages, position));
  let showing = 0; // only the latest selection's texts are drawn
  // The heading at once, the text once the worker has read it (the latest selection's only).
  const showPanel = async () => {
    markArrows(svg, selected, compared);
    const request = ++showing;
    const [first, second] = [selected, compared].map((frame) => byFrame.get(frame));
    if (first === undefined) return;
    const heading = (message) => `Frame ${message.frame}: ${message.src_ip.includes(":") ? `[${message.src_ip}]` : message.src_ip}:${message.src_port} → `
      + `${message.dst_ip.includes(":") ? `[${message.dst_ip}]` : message.dst_ip}:${message.dst_port} (${message.transport})`;
    const title = el("h4", { className: "ladder-panel-heading" },
      second === undefined ? heading(report.sip_messages[first]) : `Frame ${selected} compared with frame ${compared}`);
    const waiting = el("p", { className: "ladder-loading" }, "reading the message…");
    panel.replaceChildren(title, waiting);
    let texts;
    try {
      texts = await Promise.all([first, second].map((position) => (position === undefined ? null : textAt(position))));
    } catch (error) {
      if (request === showing) waiting.replaceWith(el("p", { className: "error" }, `The message could not be read: ${error.message}`));
      return;
    }
    if (request !== showing) return;
    if (second === undefined) {
      waiting.replaceWith(messageText(texts[0] ?? "(no such message in the capture)"));
      return;
    }
    const steps = messageDiff(texts[0] ?? "", texts[1] ?? "");
    const differing = steps.filter((step) => step.kind !== "same").length;
    waiting.replaceWith(
      el("p", { className: "ladder-diff-legend" },
        `${differing} line${differing === 1 ? "" : "s"} differ: − only in frame ${selected}, + only in frame ${compared}.`),
      diffView(steps));
  };
  const activate = (frame, compare) => {
    if (compare && selected !== null && frame !== selected) compared = frame;
    else [selected, compared] = [frame, null];
    showPanel();
  };
  const draw = async () => {
    const request = ++drawing;
    const calls = { dialog: [call?.call_id], legs: legs.map((leg) => leg.call_id), all: null }[scope.value];
    try {
      const text = await api.ladder(calls, { perPort: columns.value === "port", collapseRetransmissions: collapse.checked });
      if (request !== drawing) return;
      svgText = text;
      svg = ladderElement(text);
      wireArrows(svg, activate);
      figure.replaceChildren(svg);
      if (selected !== null) showPanel();
    } catch (error) {
      if (request === drawing) figure.replaceChildren(el("p", { className: "error" }, `No ladder: ${error.message}`));
    }
  };
  for (const control of [scope, columns, collapse]) control.addEventListener("change", draw);
  draw();
  const exportSvg = el("button", { type: "button", className: "ladder-export-svg" }, "Export SVG");
  exportSvg.addEventListener("click", () => svgText && api.download(svgBlob(svgText), `${name}.svg`));
  const exportPng = el("button", { type: "button", className: "ladder-export-png" }, "Export PNG");
  exportPng.addEventListener("click", async () => svgText && api.download(await pngBlob(svgText), `${name}.png`));
  return el("section", { className: "ladder-section", "aria-label": "Ladder diagram" },
    el("div", { className: "ladder-tools" },
      labelled("Ladder of", scope), labelled("Columns", columns),
      el("label", {}, collapse, " collapse retransmissions"), exportSvg, exportPng),
    el("div", { className: "ladder-view" }, figure, panel));
}
