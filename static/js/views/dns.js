// DNS tab: RFC 3263 resolution chains (NAPTR -> SRV -> A/AAAA) with the step
// that failed, the failed or unanswered lookups, then every query.

import { el, pagedTable, words } from "./dom.js";
import { findingList, frameLinks } from "./findings.js";

const DNS_CODES = new Set(["DNS_FAILURE", "DNS_EMPTY_ANSWER", "DNS_NO_RESPONSE", "DNS_SLOW", "NO_REGISTER_DNS_SUSPECT"]);
const QUERY_COLUMNS = ["Frame", "Name", "Type", "Result", "Answers", "Time", "Server"];

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

function queryRow(row, api) {
  return el(
    "tr",
    { className: `dns-row dns-rcode-${(row.rcode ?? "none").toLowerCase()}` },
    el("td", {}, frameLinks([row.frame], api)),
    el("td", {}, row.qname ?? ""),
    el("td", {}, row.qtype ?? ""),
    el("td", {}, result(row)),
    el("td", {}, row.answers),
    el("td", {}, row.response_ms === null ? "–" : `${row.response_ms.toFixed(1)} ms`),
    el("td", {}, row.server ?? ""),
  );
}

function queryTable(rows, api) {
  return pagedTable("dns-table", QUERY_COLUMNS, rows, (row) => queryRow(row, api));
}

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
  const problems = rows.filter((row) => row.rcode !== "NOERROR" || row.answers === 0);
  container.append(
    el("h3", { className: "dns-heading" }, `SIP resolution chains (${chains.length})`),
    chains.length
      ? el("div", { className: "dns-chains" }, chains.map((chain) => chainView(chain, api)))
      : el("p", { className: "dns-empty" }, "No NAPTR/SRV lookups for SIP."),
    ...(related.length ? [findingList(related, api)] : []), // append would print a null
    el("h3", { className: "dns-heading" }, `Failed or unanswered queries (${problems.length})`),
    problems.length ? queryTable(problems, api) : el("p", { className: "dns-empty" }, "None."),
    el(
      "details",
      { className: "dns-all" },
      el("summary", {}, `All queries (${rows.length})`),
      queryTable(rows, api),
    ),
  );
}
