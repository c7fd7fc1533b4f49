// SIP messages tab: every SIP message, a page at a time, sorted, filtered and
// searched (headers and bodies) in the worker; a click (or Enter) shows the
// message text, which the worker reads from the file then (the report carries
// none). Below, the packets the path findings cite that are no SIP
// message (ICMP errors, TCP and TLS connections, DNS answers without their
// query), so every evidence frame has a row.
// select(): #messages/frame/N opens message N, #messages/packet/N that
// packet's row, #messages/call/<Call-ID> the messages of a Call-ID.

import { activatable, el, elided, indexInFrame, isoTime, labelled, TIME_OUT_OF_RANGE, workerTable } from "./dom.js";

const COLUMNS = [
  { label: "Frame", column: "frame" },
  { label: "Time", column: "time" },
  { label: "Relative (s)", column: "relative" },
  { label: "Delta (s)", column: "delta" },
  { label: "Source → Destination", column: "source" },
  { label: "Transport", column: "transport" },
  { label: "Message", column: "message" },
  { label: "Request-URI", column: "request_uri" },
  { label: "From", column: "from" },
  { label: "To", column: "to" },
  { label: "CSeq", column: "cseq" },
  { label: "Call-ID", column: "call_id" },
];
const NETWORK_COLUMNS = [
  { label: "Frame", column: "frame" },
  { label: "Kind", column: "kind" },
  { label: "Time", column: "time" },
  { label: "Source", column: "source" },
  { label: "Destination", column: "destination" },
  { label: "What", column: "what" },
];
// The methods a SIP capture carries (RFC 3261 and its extensions): a fixed
// list, so the page need not scan the report for the ones present.
const METHODS = ["INVITE", "ACK", "BYE", "CANCEL", "REGISTER", "OPTIONS", "PRACK", "UPDATE", "INFO", "SUBSCRIBE",
  "NOTIFY", "REFER", "MESSAGE", "PUBLISH"];
const STATUS_CLASSES = [["request", "requests"], ["1xx", "1xx provisional"], ["2xx", "2xx success"],
  ["3xx", "3xx redirection"], ["4xx", "4xx client error"], ["5xx", "5xx server error"], ["6xx", "6xx global failure"]];

// How long a pause in typing a search waits for before asking the worker.
const SEARCH_DELAY_MS = 300;

// What render() drew in each panel, for select().
const drawn = new WeakMap();

// Epoch seconds to the microsecond: "2005-07-04 09:32:31.656311 UTC".
function microTime(epochSeconds) {
  if (isoTime(epochSeconds) === null) return TIME_OUT_OF_RANGE;
  const micros = Math.round(epochSeconds * 1e6);
  const seconds = Math.floor(micros / 1e6);
  const fraction = String(micros - seconds * 1e6).padStart(6, "0");
  return isoTime(seconds).replace("T", " ").replace(/\.\d+Z$/, `.${fraction} UTC`);
}

// The time of day to the microsecond; the date (the summary has it too) on hover.
function timeCell(epochSeconds) {
  const full = microTime(epochSeconds);
  return el("td", { className: "time", title: full }, full === TIME_OUT_OF_RANGE ? full : full.slice(11, 26));
}

function seconds(value) {
  return value === null || value === undefined ? "–" : value.toFixed(6);
}

function label(row) {
  return row.method ?? `${row.status} ${row.reason ?? ""}`.trim();
}

function messageRow({ index, row, derived }, report, api) {
  const tr = el(
    "tr",
    { className: "clickable message-row", "data-frame": row.frame, title: "show the message" },
    el("td", { className: "num" }, row.frame),
    timeCell(row.time),
    el("td", { className: "num" }, seconds(derived.relative)),
    el("td", { className: "num" }, derived.delta === null ? "–" : `+${seconds(derived.delta)}`),
    el("td", {}, `${derived.source} → ${derived.destination}`),
    el("td", {}, row.transport),
    el("td", {}, label(row), row.errors?.length ? ` ⚠ ${row.errors.join("; ")}` : ""),
    elided(row.request_uri),
    elided(row.from ?? row.from_uri),
    elided(row.to ?? row.to_uri),
    el("td", { className: "num" }, row.cseq === null ? "" : `${row.cseq} ${row.cseq_method ?? ""}`.trim()),
    elided(row.call_id),
  );
  const readText = () => api.messageText(row.frame, indexInFrame(report.sip_messages, index));
  tr.showText = () => toggleText(tr, readText, true); // for select(), which has only the row
  return activatable(tr, () => {
    const open = toggleText(tr, readText);
    if (open) api.selected("frame", row.frame);
  });
}

// Shows (or hides) the message's text under its row; true when it is shown.
// The text comes from the worker; until it does, the row under says so.
function toggleText(tr, readText, show = null) {
  const next = tr.nextElementSibling;
  const shown = next?.classList.contains("message-text-row");
  if (shown && show !== true) {
    next.remove();
    tr.classList.remove("row-selected");
    return false;
  }
  if (!shown && show !== false) {
    const pre = el("pre", { className: "message-text loading", tabIndex: 0, "aria-busy": "true" }, "reading the message…");
    tr.after(el("tr", { className: "message-text-row" }, el("td", { colSpan: COLUMNS.length }, pre)));
    readText().then(
      (text) => pre.replaceChildren(text ?? "(no such message in the capture)"),
      (error) => pre.replaceChildren(`The message could not be read: ${error.message}`),
    ).finally(() => {
      pre.classList.remove("loading");
      pre.removeAttribute("aria-busy");
    });
  }
  tr.classList.add("row-selected");
  return true;
}

function networkRow({ row }) {
  return el(
    "tr",
    { className: `network-row network-${row.kind}`, "data-frame": row.frame, tabIndex: 0 },
    el("td", { className: "num" }, row.frames.join(", ")),
    el("td", {}, row.kind.toUpperCase()),
    row.time === null ? el("td", {}, "–") : timeCell(row.time),
    el("td", {}, row.src),
    el("td", {}, row.dst),
    el("td", {}, row.text),
  );
}

function filterControls(messages) {
  const method = el("select", { className: "message-method" }, el("option", { value: "" }, "any method"),
    METHODS.map((name) => el("option", { value: name }, name)));
  const statusClass = el("select", { className: "message-status" }, el("option", { value: "" }, "requests and responses"),
    STATUS_CLASSES.map(([value, text]) => el("option", { value }, text)));
  const address = el("input", { type: "search", className: "message-address", placeholder: "10.0.0.1 or :5060" });
  const callId = el("input", { type: "search", className: "message-call-id" });
  const search = el("input", { type: "search", className: "filter", placeholder: "any text: headers, SDP, Call-ID" });
  const apply = (delay = 0) => messages.setQuery({
    filters: { method: method.value, status_class: statusClass.value, address: address.value.trim(), call_id: callId.value.trim() },
    search: search.value,
  }, { delay });
  for (const control of [method, statusClass]) control.addEventListener("change", () => apply());
  for (const control of [address, callId]) control.addEventListener("input", () => apply());
  // A search reads every message's text from the file again (about 2 s for 100 MB of SIP):
  // it waits for a pause in the typing rather than run once per key.
  search.addEventListener("input", () => apply(SEARCH_DELAY_MS));
  const element = el("div", { className: "message-filters" },
    labelled("Search headers and bodies", search, "field filter-field"),
    labelled("Method", method), labelled("Status", statusClass), labelled("Address", address),
    labelled("Call-ID", callId));
  return {
    element,
    // An evidence link names a row these filters may hide: show everything, or one Call-ID.
    async reset(callIdValue = "") {
      method.value = statusClass.value = address.value = search.value = "";
      callId.value = callIdValue;
      await apply();
    },
  };
}

export function render(report, container, api) {
  const parts = {};
  if (report.sip_messages.length) {
    const messages = workerTable({
      className: "messages", table: "messages", columns: COLUMNS, api,
      makeRow: (entry) => messageRow(entry, report, api),
    });
    const filters = filterControls(messages);
    parts.messages = { table: messages, filters };
    container.append(filters.element, messages.element);
  } else {
    container.append(el("p", { className: "empty" }, "No SIP messages in this capture."));
  }
  const events = report.network_events ?? [];
  if (events.length) {
    const network = workerTable({ className: "network-table", table: "network", columns: NETWORK_COLUMNS, api,
      makeRow: networkRow });
    parts.network = network;
    container.append(
      el("h3", { className: "network-heading" }, `Network path: ICMP errors, TCP and TLS connections, DNS answers without their query (${events.length})`),
      network.element);
  }
  const missing = el("p", { className: "missing-frame", hidden: true });
  container.prepend(missing);
  drawn.set(container, { ...parts, missing });
}

// The element an evidence link or a hash names, or null.
export async function select(container, kind, value, api) {
  const { messages, network, missing } = drawn.get(container);
  missing.hidden = true;
  if (kind === "frame" && messages) {
    const frame = Number(value);
    let row = await messages.table.show(frame);
    if (!row && messages.table.narrowed) {
      await messages.filters.reset();
      row = await messages.table.show(frame);
    }
    if (row) {
      row.showText();
      return row;
    }
  }
  if (kind === "call" && messages) {
    await messages.filters.reset(value);
    return messages.table.table.tBodies[0].rows[0] ?? null;
  }
  if ((kind === "packet" || kind === "frame") && network) {
    const row = await network.show(Number(value));
    if (row) {
      row.classList.add("row-selected");
      return row;
    }
  }
  missing.textContent = `Frame ${value} is in no table of this capture.`;
  missing.hidden = false;
  return missing;
}
