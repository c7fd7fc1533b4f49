// Calls tab: the RFC 6076 figures per trunk, a filterable table of calls;
// selecting one shows its timing, DTMF and the other legs of its call, and
// the engine's ladder of it (views/ladder.js): of the dialog, of all the
// call's legs, or of all SIP, with the clicked message in a side panel, the
// diff of two messages, and SVG/PNG export.

import { dataTable, delayText, el, isoTime, labelled, ratioText, TIME_OUT_OF_RANGE, words } from "./dom.js";
import { findingList, findingsAbout, frameLinks } from "./findings.js";
import { diffView, ladderElement, markArrows, messageDiff, messageText, pngBlob, svgBlob, wireArrows } from "./ladder.js";

const COLUMNS = ["Time", "From", "To", "Outcome", "Final status", "Post-dial delay", "Setup time", "Duration", "Codecs",
  "MOS (estimate)"];
const TRUNK_COLUMNS = ["Trunk", "Session requests", "SER", "SEER", "ISA", "SCR", "SRD (successful)", "SRD (failed)",
  "SDD"];
const DTMF_COLUMNS = ["Digit", "Sent as", "Frame", "Time", "Duration", "Volume", "From → to"];

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

function cells(call) {
  return [
    when(call.start_time), call.from_uri ?? "", call.to_uri ?? "", call.outcome.replace("_", " "),
    call.final_status ?? "–", ms(call.timing.post_dial_delay_ms), ms(call.timing.setup_time_ms), duration(call.timing),
    (call.codecs_answered?.length ? call.codecs_answered : call.codecs_offered ?? []).join(", "),
    call.mos_estimate ?? "–",
  ];
}

function matches(call, text, outcome) {
  if (outcome && call.outcome !== outcome) return false;
  const haystack = [call.from_uri, call.to_uri, call.call_id, call.caller, call.callee].join(" ").toLowerCase();
  return haystack.includes(text.trim().toLowerCase());
}

export function render(report, container, api) {
  if (!report.calls.length) {
    container.append(el("p", { className: "empty" }, "No calls (INVITE dialogs) in this capture."));
    // The registrations, OPTIONS and the rest still make a flow graph.
    if (report.sip_messages.length) container.append(el("h3", {}, "Every SIP message"), ladderSection(report, null, api));
    return;
  }
  const search = el("input", { type: "search", className: "call-filter", placeholder: "number, user or Call-ID" });
  const outcomes = [...new Set(report.calls.map((c) => c.outcome))];
  const outcome = el("select", { className: "call-outcome-filter" }, el("option", { value: "" }, "all outcomes"),
    outcomes.map((o) => el("option", { value: o }, o.replace("_", " "))));
  const detail = el("div", { className: "call-detail" });
  // Call-ID -> opens its row: a leg of a call opens another leg.
  const openers = new Map();
  const openCall = (callId) => openers.get(callId)?.();
  const rows = report.calls.map((call) => {
    const row = el("tr", { className: `call-row call-outcome-${call.outcome}`, tabIndex: 0 },
      cells(call).map((value) => el("td", {}, value)));
    const open = () => {
      for (const other of rows) other.classList.toggle("call-selected", other === row);
      showCall(report, call, detail, api, openCall);
    };
    openers.set(call.call_id, open);
    row.addEventListener("click", open);
    row.addEventListener("keydown", (event) => event.key === "Enter" && open());
    return row;
  });
  const applyFilter = () => report.calls.forEach((call, i) => (rows[i].hidden = !matches(call, search.value, outcome.value)));
  search.addEventListener("input", applyFilter);
  outcome.addEventListener("change", applyFilter);
  container.append(
    ...trunkTable(report.trunks),
    el("h3", { className: "call-heading" }, `Calls (${report.calls.length})`),
    el("div", { className: "call-filters" }, labelled("Search", search), " ", labelled("Outcome", outcome)),
    dataTable("calls call-table", COLUMNS, rows),
    detail,
  );
  if (report.calls.length === 1) rows[0].click();
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
    el("table", { className: "trunk-table" },
      el("thead", {}, el("tr", {}, TRUNK_COLUMNS.map((name) => el("th", {}, name)))),
      el("tbody", {}, trunks.map((trunk) => el("tr", { className: "trunk-row" },
        trunkCells(trunk).map((value) => el("td", {}, value)))))),
    el("p", { className: "call-note" },
      "A trunk is a pair of signalling endpoints; each INVITE leg is one session request. SER: answered / requests "
      + "less redirected. SEER: answered, or 480/486/600/603, / the same. ISA: 408/500/503/504 / requests. SCR: "
      + "answered and ended by a BYE that got its 2xx / requests. SRD: INVITE → first ringing or progress (else the "
      + "200), or → the 4xx/5xx. SDD: BYE → its 2xx. Requests the capture ended before deciding are left out."),
  ];
}

function dtmfTable(call, api) {
  const rows = call.dtmf.map((digit) => el("tr", { className: "call-dtmf-row" },
    el("td", {}, digit.digit),
    el("td", {}, digit.source === "rfc4733" ? `RFC 4733${digit.ended ? "" : " (no end packet)"}` : "SIP INFO"),
    // An INFO opens in the SIP messages tab; an RTP packet is not there, so its number is only shown.
    el("td", {}, digit.source === "sip-info" ? frameLinks([digit.frame], api) : `#${digit.frame}`),
    el("td", {}, `+${(digit.time - call.start_time).toFixed(3)} s`),
    el("td", {}, ms(digit.duration_ms)),
    el("td", {}, digit.volume === null ? "–" : `−${digit.volume} dBm0`),
    el("td", {}, `${digit.src} → ${digit.dst}`)));
  return el("table", { className: "call-dtmf" },
    el("thead", {}, el("tr", {}, DTMF_COLUMNS.map((name) => el("th", {}, name)))),
    el("tbody", {}, rows));
}

function showCall(report, call, detail, api, openCall) {
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
    ...callLegs(report, call, openCall),
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
function callLegs(report, call, openCall) {
  const legs = groupCalls(report, call);
  if (legs.length < 2) return [];
  const ties = new Map((call.group_links ?? []).map((link) => [link.call_id, link]));
  const items = legs.map((leg) => {
    const what = `${leg.caller} → ${leg.callee}, ${words(leg.outcome)} (${leg.from_uri ?? "?"} → ${leg.to_uri ?? "?"})`;
    if (leg === call) return el("li", { className: "call-leg call-leg-this" }, el("strong", {}, "this dialog: "), what);
    const tie = ties.get(leg.call_id);
    const open = el("button", { type: "button", className: "call-leg-open" }, leg.call_id);
    open.addEventListener("click", () => openCall(leg.call_id));
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
  const byFrame = new Map(report.sip_messages.map((message) => [message.frame, message]));
  const name = call ? `call-${call.call_id.replace(/[^A-Za-z0-9._-]/g, "_").slice(0, 40)}` : "sip-flow";
  let svgText = null;
  let svg = null;
  let selected = null;
  let compared = null;
  let drawing = 0; // the latest request wins when options change quickly

  const showPanel = () => {
    markArrows(svg, selected, compared);
    const first = byFrame.get(selected);
    const second = byFrame.get(compared);
    if (!first) return;
    const heading = (message) => `Frame ${message.frame}: ${message.src_ip.includes(":") ? `[${message.src_ip}]` : message.src_ip}:${message.src_port} → `
      + `${message.dst_ip.includes(":") ? `[${message.dst_ip}]` : message.dst_ip}:${message.dst_port} (${message.transport})`;
    if (!second) {
      panel.replaceChildren(el("h4", { className: "ladder-panel-heading" }, heading(first)),
        messageText(first.text ?? "(the report carries no message text)"));
      return;
    }
    const steps = messageDiff(first.text ?? "", second.text ?? "");
    const differing = steps.filter((step) => step.kind !== "same").length;
    panel.replaceChildren(
      el("h4", { className: "ladder-panel-heading" }, `Frame ${first.frame} compared with frame ${second.frame}`),
      el("p", { className: "ladder-diff-legend" },
        `${differing} line${differing === 1 ? "" : "s"} differ: − only in frame ${first.frame}, + only in frame ${second.frame}.`),
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
