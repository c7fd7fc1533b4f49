// Every SIP message in capture order; a click (or Enter) shows the message
// text. The shell can focus a few frames (evidence links elsewhere call
// api.showFrames).

import { activatable, el, fillPaged, labelled, pagedTable } from "./dom.js";
import { formatTime } from "./summary.js";

const COLUMNS = ["Frame", "Time", "Source → Destination", "Transport", "Message", "Call-ID"];

function firstLine(row) {
  return row.method ? `${row.method} (CSeq ${row.cseq ?? "?"})` : `${row.status} ${row.reason ?? ""}`.trim();
}

function addressOf(ip, port) {
  return ip.includes(":") ? `[${ip}]:${port}` : `${ip}:${port}`;
}

function messageRow(row) {
  const tr = el(
    "tr",
    { className: "clickable", "data-frame": row.frame, title: "show the message" },
    el("td", { className: "num" }, row.frame),
    el("td", {}, formatTime(row.time)),
    el("td", {}, `${addressOf(row.src_ip, row.src_port)} → ${addressOf(row.dst_ip, row.dst_port)}`),
    el("td", {}, row.transport),
    el("td", {}, firstLine(row), row.errors?.length ? ` ⚠ ${row.errors.join("; ")}` : ""),
    el("td", {}, row.call_id ?? ""),
  );
  return activatable(tr, () => toggleText(tr, row));
}

function toggleText(tr, row) {
  const next = tr.nextElementSibling;
  if (next?.classList.contains("message-text-row")) {
    next.remove();
    return;
  }
  const text = row.text ?? "(the report carries no message text)";
  tr.after(el("tr", { className: "message-text-row" }, el("td", { colSpan: COLUMNS.length }, el("pre", { className: "message-text" }, text))));
}

function matches(row, needle) {
  const haystack = [firstLine(row), row.call_id, row.src_ip, row.dst_ip, row.from_uri, row.to_uri].join(" ").toLowerCase();
  return haystack.includes(needle);
}

export function render(report, container, api) {
  const focus = api.focusedFrames ? new Set(api.focusedFrames) : null;
  const rows = focus ? report.sip_messages.filter((row) => focus.has(row.frame)) : report.sip_messages;
  if (!report.sip_messages.length) {
    container.append(el("p", { className: "empty" }, "No SIP messages in this capture."));
    return;
  }
  const table = pagedTable("messages", COLUMNS, rows, messageRow);
  const filter = el("input", { type: "search", className: "filter", placeholder: "method, status, Call-ID, address, URI" });
  filter.addEventListener("input", () => {
    const needle = filter.value.trim().toLowerCase();
    fillPaged(table.tBodies[0], rows.filter((row) => !needle || matches(row, needle)), messageRow, COLUMNS);
  });
  if (focus) {
    const showAll = el("button", { type: "button" }, "show all messages");
    showAll.addEventListener("click", () => api.showFrames(null));
    container.append(el("p", {}, `Showing frames ${[...focus].join(", ")}. `, showAll));
    table.querySelectorAll("tr.clickable").forEach((tr, index) => toggleText(tr, rows[index]));
  }
  container.append(labelled("Filter", filter, "field filter-field"), table);
}
