// Calls tab: the RFC 6076 figures per trunk, a filterable table of calls;
// selecting one shows its timing and DTMF and draws its ladder diagram
// (ladder.js) with SVG/PNG export and the full text of a clicked message.

import { dataTable, delayText, el, isoTime, labelled, ratioText, TIME_OUT_OF_RANGE } from "./dom.js";
import { findingList, findingsAbout, frameLinks } from "./findings.js";
import { pngBlob, renderLadder, svgBlob } from "./ladder.js";

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
    return;
  }
  const search = el("input", { type: "search", className: "call-filter", placeholder: "number, user or Call-ID" });
  const outcomes = [...new Set(report.calls.map((c) => c.outcome))];
  const outcome = el("select", { className: "call-outcome-filter" }, el("option", { value: "" }, "all outcomes"),
    outcomes.map((o) => el("option", { value: o }, o.replace("_", " "))));
  const detail = el("div", { className: "call-detail" });
  const rows = report.calls.map((call) => {
    const row = el("tr", { className: `call-row call-outcome-${call.outcome}`, tabIndex: 0 },
      cells(call).map((value) => el("td", {}, value)));
    const open = () => {
      for (const other of rows) other.classList.toggle("call-selected", other === row);
      showCall(report, call, detail, api);
    };
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

function showCall(report, call, detail, api) {
  const messages = report.sip_messages;
  const figure = el("div", { className: "ladder-scroll" });
  const messageText = el("pre", { className: "ladder-message", hidden: true, tabIndex: 0 });
  const collapse = el("input", { type: "checkbox", className: "ladder-collapse" });
  const name = `call-${call.call_id.replace(/[^A-Za-z0-9._-]/g, "_").slice(0, 40)}`;
  let svg = null;
  const draw = () => {
    svg = renderLadder(call, messages, { collapseRetransmissions: collapse.checked });
    for (const arrow of svg.querySelectorAll(".ladder-arrow")) {
      arrow.addEventListener("click", () => {
        const message = messages.find((m) => m.frame === Number(arrow.dataset.frame));
        messageText.hidden = false;
        messageText.textContent = `frame ${message.frame}  ${message.src_ip}:${message.src_port} → ${message.dst_ip}:${message.dst_port}\n\n${message.text ?? ""}`;
      });
    }
    figure.replaceChildren(svg);
  };
  collapse.addEventListener("change", draw);
  draw();
  const exportSvg = el("button", { type: "button", className: "ladder-export-svg" }, "Export SVG");
  exportSvg.addEventListener("click", () => api.download(svgBlob(svg), `${name}.svg`));
  const exportPng = el("button", { type: "button", className: "ladder-export-png" }, "Export PNG");
  exportPng.addEventListener("click", async () => api.download(await pngBlob(svg), `${name}.png`));
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
    ["Legs", call.legs.map((leg) => `${leg.caller} → ${leg.callee}: ${leg.final_status ?? "no final answer"}`).join("; ")],
    ["Events", call.events.map((e) => `#${e.frame} ${e.text}`).join("; ") || "–"],
  ];
  detail.replaceChildren(
    el("h3", {}, `Call ${call.call_id}`),
    el("dl", { className: "call-facts" }, facts.map(([term, value]) => [el("dt", {}, term), el("dd", {}, value)])),
    ...(call.dtmf.length ? [el("h4", {}, `DTMF (${call.dtmf.length})`), dtmfTable(call, api)] : []),
    ...(findings.length ? [findingList(findings, api)] : []), // replaceChildren would print a null
    el("div", { className: "ladder-tools" },
      el("label", {}, collapse, " collapse retransmissions"), " ", exportSvg, " ", exportPng),
    figure,
    el("p", { className: "call-note" }, "MOS values are E-model estimates from loss, jitter and codec, not measurements."),
    messageText,
  );
}
