// Registrations tab: a per-registrar summary with RFC 6076's registration
// metrics, then one row per REGISTER sequence; clicking a row opens its
// message timeline, raw messages and the findings about it.

import { counted, dataTable, delayText, el, elided, indexInFrame, ratioText, workerTable, words } from "./dom.js";
import { findingList, findingsAbout, frameLinks } from "./findings.js";

const SUMMARY_COLUMNS = ["Registrar", "Clients", "Sequences", "Registered", "Failed", "Failed by status", "Pattern",
  "RRD (RFC 6076)", "IRA (RFC 6076)"];
// Sorted in the worker (report_tables.py's registrations columns).
const ROW_COLUMNS = [
  { label: "Client", column: "client" },
  { label: "AOR", column: "aor" },
  { label: "Registrar", column: "registrar" },
  { label: "Outcome", column: "outcome" },
  { label: "Final", column: "final_status" },
  { label: "Challenges", column: "challenges" },
  { label: "Requests (retx)", column: "requests" },
  { label: "Expires req/granted", column: "expires" },
];

function show(value) {
  return value === null || value === undefined ? "–" : String(value);
}

function summaryTable(registrars) {
  const rows = registrars.map((r) =>
    el(
      "tr",
      { className: `reg-pattern-${r.pattern}` },
      el("td", {}, r.registrar),
      el("td", {}, r.clients),
      el("td", {}, r.sequences),
      el("td", {}, r.registered),
      el("td", {}, r.failed),
      el("td", {}, counted(r.failed_by_status) || "–"),
      el("td", {}, words(r.pattern)),
      el("td", { className: "reg-rrd" }, delayText(r.rfc6076.registration_request_delay_ms)),
      el("td", { className: "reg-ira" }, ratioText(r.rfc6076.ineffective_registration_attempts)),
    ),
  );
  return dataTable("reg-summary", SUMMARY_COLUMNS, rows);
}

function timeline(row, report, messagesByFrame, api) {
  const start = row.timeline.length ? row.timeline[0].time : 0;
  const lines = row.timeline.map((entry) =>
    el(
      "tr",
      { className: `reg-step reg-step-${entry.direction}${entry.retransmission ? " reg-step-retx" : ""}` },
      el("td", {}, frameLinks([entry.frame], api)),
      el("td", {}, `+${(entry.time - start).toFixed(3)} s`),
      el("td", {}, entry.direction === "request" ? "→" : "←"),
      el("td", {}, entry.label, entry.retransmission ? " (retransmission)" : ""),
      el("td", {}, `CSeq ${show(entry.cseq)}`),
      el("td", {}, entry.credentials ? "credentials" : ""),
      el("td", {}, entry.expires === null ? "" : `expires ${entry.expires}`),
    ),
  );
  const messages = row.timeline.map((entry) => el("pre", { className: "reg-raw-message", tabIndex: 0 }, `#${entry.frame}\n`));
  const raw = el("details", { className: "reg-raw" }, el("summary", {}, "Raw messages"), messages);
  // The report has no message text: the worker reads these messages from the file when first opened.
  let requested = false;
  raw.addEventListener("toggle", () => {
    if (!raw.open || requested) return;
    requested = true;
    row.timeline.forEach(async (entry, step) => {
      const position = messagesByFrame.get(entry.frame);
      try {
        const text = position === undefined ? null : await api.messageText(entry.frame, indexInFrame(report.sip_messages, position));
        messages[step].append(text ?? "");
      } catch (error) {
        messages[step].append(`(could not be read: ${error.message})`);
      }
    });
  });
  return [el("table", { className: "reg-timeline" }, el("tbody", {}, lines)), raw];
}

function detailRow(row, report, messagesByFrame, api) {
  const related = findingsAbout(report.findings, row.call_id);
  const cell = el(
    "td",
    { colSpan: ROW_COLUMNS.length, className: "reg-detail" },
    el(
      "p",
      { className: "reg-detail-facts" },
      `Call-ID ${row.call_id} · Contact ${show(row.contact)} · ${row.transport}`,
      row.user_agent ? ` · ${row.user_agent}` : "",
      row.refresh_intervals.length ? ` · refreshed every ${row.refresh_intervals.join(", ")} s` : "",
    ),
    timeline(row, report, messagesByFrame, api),
    related.length ? findingList(related, api) : null,
  );
  return el("tr", { className: "reg-detail-row", hidden: true }, cell);
}

function sequenceRows({ index, row }, report, messagesByFrame, api) {
  const main = el(
    "tr",
    { className: "reg-row", tabIndex: 0, "data-call-id": row.call_id },
    el("td", {}, row.client),
    elided(show(row.aor)),
    el("td", {}, row.registrar),
    el("td", {}, el("span", { className: `reg-outcome reg-outcome-${row.outcome}` }, words(row.outcome))),
    el("td", {}, show(row.final_status)),
    el("td", {}, row.challenges),
    el("td", {}, `${row.requests} (${row.retransmissions})`),
    el("td", {}, `${show(row.expires_requested)} / ${show(row.expires_granted)}`),
  );
  const detail = detailRow(row, report, messagesByFrame, api);
  // open: true or false to set, null to toggle; the URL follows what the user opens.
  main.openDetail = (open = null) => {
    detail.hidden = open === null ? !detail.hidden : !open;
    main.classList.toggle("reg-row-open", !detail.hidden);
    return !detail.hidden;
  };
  const toggle = () => {
    if (main.openDetail()) api.selected("registration", index);
  };
  main.addEventListener("click", toggle);
  main.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      toggle();
    }
  });
  return [main, detail];
}

// What render() drew in each panel, for select().
const drawn = new WeakMap();

export function render(report, container, api) {
  container.replaceChildren();
  if (!report.registrations.length) {
    const dnsSuspect = report.findings.some((f) => f.code === "NO_REGISTER_DNS_SUSPECT");
    container.append(
      el(
        "p",
        { className: "reg-empty" },
        "No REGISTER in this capture.",
        dnsSuspect ? " SIP-related DNS lookups failed: see the DNS tab." : "",
      ),
    );
    return;
  }
  // A frame's position in the report (of a frame's several messages, the last).
  const messagesByFrame = new Map(report.sip_messages.map((m, position) => [m.frame, position]));
  const table = workerTable({ className: "reg-table", table: "registrations", columns: ROW_COLUMNS, api,
    makeRow: (entry) => sequenceRows(entry, report, messagesByFrame, api) });
  drawn.set(container, table);
  container.append(
    el("h3", { className: "reg-heading" }, "Registrars"),
    summaryTable(report.registrars ?? []),
    el("p", { className: "reg-note" },
      "RRD: first REGISTER of an attempt → its 2xx, the challenge included. IRA: attempts ended by a 4xx other than "
      + "401/402/407, a 5xx or 6xx, or no answer, / attempts the capture shows decided."),
    el("h3", { className: "reg-heading" }, `Registration sequences (${report.registrations.length})`),
    table.element,
  );
}

// #registrations/registration/<row index>: that sequence's row, its timeline open.
export async function select(container, kind, value) {
  const table = drawn.get(container);
  if (!table || kind !== "registration") return null;
  const row = await table.show(Number(value));
  row?.openDetail(true);
  return row;
}
