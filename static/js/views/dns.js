// DNS tab: RFC 3263 resolution chains (NAPTR -> SRV -> A/AAAA) with the step
// that failed, the failed or unanswered lookups, then every query.

import { el, workerTable, words } from "./dom.js";
import { findingList, frameLinks } from "./findings.js";

const DNS_CODES = new Set(["DNS_FAILURE", "DNS_EMPTY_ANSWER", "DNS_NO_RESPONSE", "DNS_SLOW", "NO_REGISTER_DNS_SUSPECT"]);
// Sorted in the worker (report_tables.py's dns columns).
const QUERY_COLUMNS = [
  { label: "Frame", column: "frame" },
  { label: "Name", column: "name" },
  { label: "Type", column: "type" },
  { label: "Result", column: "result" },
  { label: "Answers", column: "answers" },
  { label: "Time", column: "response_ms" },
  { label: "Server", column: "server" },
];

function chainView(chain, api) {
  const steps = chain.steps.map((step) =>
    el(
      "li",
      { className: `dns-step dns-state-${step.state}${chain.failed_step === step.step ? " dns-step-failed" : ""}` },
      el("strong", {}, step.step),
      " ",
      // An unqueried step has no names: its state says so.
      step.names.length ? `${step.names.join(", ")} — ` : "— ",
      words(step.state),
      step.rcodes.length ? ` (${step.rcodes.join(", ")})` : "",
      step.answers.length ? el("div", { className: "dns-answers" }, step.answers.join(" · ")) : null,
      step.frames.length ? frameLinks(step.frames, api) : null,
    ),
  );
  return el(
    "div",
    { className: `dns-chain dns-chain-${chain.outcome}` },
    el(
      "h4",
      {},
      chain.domain,
      ": ",
      {
        resolved: () => `resolved to ${chain.addresses.join(", ")}`,
        incomplete: () => `answered up to ${chain.answered_up_to}; the next lookup is not in the capture (cached by the client, or the capture stopped)`,
        failed: () => `failed at ${chain.failed_step ?? "?"} (${words(chain.failure ?? "")})`,
      }[chain.outcome](),
    ),
    el("ol", { className: "dns-steps" }, steps),
  );
}

function result(row) {
  if (row.rcode === null) return "no response";
  if (row.rcode === "NOERROR" && row.answers === 0) return "NOERROR (empty)";
  return row.rcode;
}

// The query's frame and its response's: an evidence link to either lands on this row.
function queryRow({ row }) {
  return el(
    "tr",
    { className: `dns-row dns-rcode-${(row.rcode ?? "none").toLowerCase()}`, tabIndex: 0, "data-frame": row.frame },
    el("td", { className: "num" }, row.response_frame ? `${row.frame} → ${row.response_frame}` : row.frame),
    el("td", {}, row.qname ?? ""),
    el("td", {}, row.qtype ?? ""),
    el("td", {}, result(row)),
    el("td", {}, row.answers),
    el("td", {}, row.response_ms === null ? "–" : `${row.response_ms.toFixed(1)} ms`),
    el("td", {}, row.server ?? ""),
  );
}

function queryTable(api, filters) {
  return workerTable({ className: "dns-table", table: "dns", columns: QUERY_COLUMNS, api, makeRow: queryRow, filters });
}

// What render() drew in each panel, for select().
const drawn = new WeakMap();

export function render(report, container, api) {
  container.replaceChildren();
  const rows = report.dns;
  if (!rows.length) {
    container.append(el("p", { className: "dns-empty" }, "No DNS queries in this capture."));
    return;
  }
  const chains = report.dns_chains ?? [];
  const related = report.findings.filter((f) => DNS_CODES.has(f.code));
  // Answered queries are only worth a glance; failures and silence are what the engineer needs.
  const problems = queryTable(api, { problems: true });
  const all = queryTable(api, {});
  const allQueries = el("details", { className: "dns-all" }, el("summary", {}, `All queries (${rows.length})`), all.element);
  drawn.set(container, { problems, all, allQueries });
  container.append(
    el("h3", { className: "dns-heading" }, `SIP resolution chains (${chains.length})`),
    chains.length
      ? el("div", { className: "dns-chains" }, chains.map((chain) => chainView(chain, api)))
      : el("p", { className: "dns-empty" }, "No NAPTR/SRV lookups for SIP."),
    ...(related.length ? [findingList(related, api)] : []), // append would print a null
    el("h3", { className: "dns-heading" }, "Failed or unanswered queries"),
    problems.element,
    allQueries,
  );
}

// #dns/frame/N: the query whose frame (or response frame) is N, among the
// failed ones when it failed, else in the list of all queries.
export async function select(container, kind, value) {
  const view = drawn.get(container);
  if (!view || kind !== "frame") return null;
  const frame = Number(value);
  let row = await view.problems.show(frame);
  if (!row) {
    view.allQueries.open = true;
    row = await view.all.show(frame);
  }
  for (const selected of container.querySelectorAll(".dns-row.row-selected")) selected.classList.remove("row-selected");
  row?.classList.add("row-selected");
  return row;
}
