// Calls tab: a filterable table of calls; selecting one draws its ladder
// diagram (ladder.js) with SVG/PNG export and the full text of a clicked message.

import { el, isoTime, TIME_OUT_OF_RANGE } from "./dom.js";
import { findingList } from "./findings.js";
import { pngBlob, renderLadder, svgBlob } from "./ladder.js";

const COLUMNS = ["Time", "From", "To", "Outcome", "Final status", "Duration", "Codecs", "MOS (estimate)"];

function when(seconds) {
  const iso = isoTime(seconds);
  return iso === null ? TIME_OUT_OF_RANGE : iso.replace("T", " ").slice(0, 23);
}

function cells(call) {
  return [
    when(call.start_time), call.from_uri ?? "", call.to_uri ?? "", call.outcome.replace("_", " "),
    call.final_status ?? "–", call.duration_s === null || call.duration_s === undefined ? "–" : `${call.duration_s} s`,
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
    el("div", { className: "call-filters" }, search, " ", outcome),
    el("table", { className: "calls call-table" },
      el("thead", {}, el("tr", {}, COLUMNS.map((name) => el("th", {}, name)))),
      el("tbody", {}, rows)),
    detail,
  );
  if (report.calls.length === 1) rows[0].click();
}

function showCall(report, call, detail, api) {
  const messages = report.sip_messages;
  const figure = el("div", { className: "ladder-scroll" });
  const messageText = el("pre", { className: "ladder-message", hidden: true });
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
  const findings = report.findings.filter((f) => f.call_id === call.call_id);
  const facts = [
    ["Caller → callee", `${call.caller} → ${call.callee}`],
    ["Post-dial delay", call.post_dial_delay_ms === null ? "–" : `${call.post_dial_delay_ms} ms`],
    ["Answered after", call.answer_delay_ms === null ? "–" : `${call.answer_delay_ms} ms`],
    ["Ended by", call.ended_by ? `${call.ended_by}${call.bye_reason ? ` (${call.bye_reason})` : ""}` : "–"],
    ["Legs", call.legs.map((leg) => `${leg.caller} → ${leg.callee}: ${leg.final_status ?? "no final answer"}`).join("; ")],
    ["Events", call.events.map((e) => `#${e.frame} ${e.text}`).join("; ") || "–"],
  ];
  detail.replaceChildren(
    el("h3", {}, `Call ${call.call_id}`),
    el("dl", { className: "call-facts" }, facts.map(([term, value]) => [el("dt", {}, term), el("dd", {}, value)])),
    ...(findings.length ? [findingList(findings, api)] : []), // replaceChildren would print a null
    el("div", { className: "ladder-tools" },
      el("label", {}, collapse, " collapse retransmissions"), " ", exportSvg, " ", exportPng),
    figure,
    el("p", { className: "call-note" }, "MOS values are E-model estimates from loss, jitter and codec, not measurements."),
    messageText,
  );
}
