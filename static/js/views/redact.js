// Redact tab: choose what to replace, see what will change, redact in this
// page (nothing is uploaded), and only after the engine's verification found
// no leak offer the evidence pack: redacted capture, HTML report, JSON report,
// mapping table and a summary for tickets.

import { el } from "./dom.js";

// The engine's RedactionOptions (py/sipdiag/redaction/text.py), all on by default.
export const OPTIONS = [
  ["users", "User parts and phone numbers"],
  ["display_names", "Display names"],
  ["domains", "SIP domains and DNS names"],
  ["call_ids", "Call-IDs"],
  ["user_agents", "User-Agent and Server strings"],
  ["mac_addresses", "MAC addresses"],
  ["rtp_payload", "Voice (RTP payload zeroed, headers kept)"],
  ["pcapng_metadata", "Capture metadata (comments, interface names, OS and hardware)"],
];

const CATEGORY_LABELS = {
  addresses: "IP addresses",
  users: "users and numbers",
  phones: "phone numbers",
  display_names: "display names",
  domains: "domains and DNS names",
  call_ids: "Call-IDs",
  user_agents: "User-Agent / Server",
  digest: "digest secrets (always)",
  mac_addresses: "MAC addresses",
  host_names: "host names",
  interface_names: "interface names",
};
const SAMPLES = 5;

// What the analysis already shows will be replaced: a preview before running.
export function preview(report) {
  const messages = report.sip_messages ?? [];
  const addresses = new Set();
  const users = new Set();
  const domains = new Set();
  for (const m of messages) {
    addresses.add(m.src_ip);
    addresses.add(m.dst_ip);
    for (const uri of [m.from_uri, m.to_uri]) {
      const match = /^sips?:(?:([^@;]+)@)?([^:;>]+)/i.exec(uri ?? "");
      if (!match) continue;
      if (match[1]) users.add(match[1]);
      if (/[a-z]/i.test(match[2]) && !match[2].includes(":")) domains.add(match[2].toLowerCase());
    }
  }
  for (const query of report.dns ?? []) if (query.qname) domains.add(query.qname.toLowerCase());
  const callIds = new Set(messages.map((m) => m.call_id).filter(Boolean));
  return [
    ["addresses", addresses],
    ["users", users],
    ["domains", domains],
    ["call_ids", callIds],
  ].map(([category, values]) => ({ category, count: values.size, samples: [...values].slice(0, SAMPLES) }));
}

// Rows of the mapping table: every original with its replacement and category.
export function mappingRows(summary) {
  const rows = Object.entries(summary.mapping ?? {}).map(([original, replacement]) => ["addresses", original, replacement]);
  for (const [category, table] of Object.entries(summary.values ?? {})) {
    for (const [original, replacement] of Object.entries(table)) rows.push([category, original, replacement]);
  }
  return rows;
}

function csv(rows) {
  const cell = (value) => `"${String(value).replaceAll('"', '""')}"`;
  return ["category,original,replacement", ...rows.map((row) => row.map(cell).join(","))].join("\n") + "\n";
}

function table(headers, rows) {
  return el(
    "table",
    { className: "redact-table" },
    el("thead", {}, el("tr", {}, headers.map((h) => el("th", {}, h)))),
    el("tbody", {}, rows.map((row) => el("tr", {}, row.map((cell) => el("td", {}, cell))))),
  );
}

function baseName(name) {
  return name.replace(/\.(pcapng|pcap|cap)$/i, "");
}

export function render(report, container, api) {
  const fileName = report.capture.file;
  const checkboxes = OPTIONS.map(([name, label]) => {
    const input = el("input", { type: "checkbox", checked: true, name, id: `redact-${name}` });
    return { name, input, row: el("label", { className: "redact-option", htmlFor: input.id }, input, " ", label) };
  });
  const key = el("input", {
    type: "password",
    placeholder: "passphrase (optional: the same passphrase gives the same replacements in every file)",
    className: "filter redact-key",
    autocomplete: "off",
  });
  const start = el("button", { type: "button", className: "redact-start" }, "Redact");
  const progress = el("progress", { className: "redact-progress", hidden: true });
  const status = el("p", { className: "status redact-status", role: "status" });
  const results = el("div", { className: "redact-results" });

  const previewRows = preview(report).map(({ category, count, samples }) => [
    CATEGORY_LABELS[category] ?? category,
    String(count),
    samples.join(", "),
  ]);

  container.append(
    el("p", {}, "The redacted copy is made in this page; nothing is uploaded. Addresses are always replaced (private stays private, subnets stay subnets) and digest nonces and responses always go."),
    el("fieldset", { className: "redact-options" }, el("legend", {}, "Also replace"), checkboxes.map((c) => c.row)),
    key,
    el("h3", {}, "What will be replaced (from the analysis)"),
    table(["category", "seen", "examples"], previewRows),
    el("p", {}, start, " ", progress),
    status,
    results,
  );

  start.addEventListener("click", async () => {
    const options = Object.fromEntries(checkboxes.map(({ name, input }) => [name, input.checked]));
    start.disabled = true;
    progress.hidden = false;
    results.replaceChildren();
    status.className = "status redact-status";
    status.textContent = "redacting and verifying…";
    // The engine reports progress over its three passes (learn, write,
    // verify); the shell's api has no per-view hook, so listen on the engine itself.
    progress.removeAttribute("value");
    const stopListening = window.sipdiag?.on?.("progress", ({ done, total }) => {
      progress.max = total || 1;
      progress.value = done;
    });
    try {
      const { blob, summary } = await api.redact({ key: key.value || null, options });
      showResult(results, status, blob, summary, fileName, api);
    } catch (error) {
      status.className = "error redact-status";
      status.textContent = error.message;
    } finally {
      stopListening?.();
      start.disabled = false;
      progress.hidden = true;
    }
  });
}

function showResult(results, status, blob, summary, fileName, api) {
  // The engine counts a changed packet count as a leak too: leaks alone decide.
  const verified = summary.leaks === 0;
  status.className = verified ? "status redact-status redact-verified" : "error redact-status redact-refused";
  status.textContent = verified
    ? `Verified: ${summary.packets_out} of ${summary.packets_in} packets written, ${summary.addresses_replaced} addresses replaced, no original value found in the output.`
    : `Refused: the verification found ${summary.leaks === 1 ? "1 original value" : `${summary.leaks} original values`} still in the output; nothing can be downloaded.`;

  const counts = Object.entries(summary.replaced ?? {}).map(([category, count]) => [CATEGORY_LABELS[category] ?? category, String(count)]);
  counts.unshift([CATEGORY_LABELS.addresses, String(summary.addresses_replaced)]);
  results.append(el("h3", {}, "Replaced"), table(["category", "values"], counts));

  if (!verified) {
    const where = (summary.leak_locations ?? []).map((leak) => [leak.frame === null ? "—" : `#${leak.frame}`, leak.what]);
    results.append(el("h3", {}, "Found in the output"), table(["frame", "what"], where));
    return;
  }

  const rows = mappingRows(summary);
  const base = baseName(fileName);
  const buttons = [
    ["Redacted capture", () => api.download(blob, `${base}.redacted.${fileName.toLowerCase().endsWith(".pcapng") ? "pcapng" : "pcap"}`)],
    ["HTML report", () => api.download(new Blob([summary.evidence_html ?? ""], { type: "text/html" }), `${base}.redacted.report.html`)],
    ["JSON report", () => api.download(new Blob([JSON.stringify(summary.report ?? {}, null, 1) + "\n"], { type: "application/json" }), `${base}.redacted.sipdiag.json`)],
    ["Mapping table (keep private)", () => api.download(new Blob([csv(rows)], { type: "text/csv" }), `${base}.redaction-mapping.csv`)],
  ].map(([label, action]) => {
    const button = el("button", { type: "button", className: "redact-download" }, label);
    button.addEventListener("click", action);
    return button;
  });
  const copy = el("button", { type: "button", className: "redact-copy" }, "Copy summary");
  const copied = el("span", { className: "status", role: "status" });
  copy.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(summary.summary_text ?? "");
      copied.textContent = " copied";
    } catch {
      copied.textContent = " the browser refused the clipboard: select the text below";
    }
  });
  results.append(
    el("h3", {}, "Evidence pack"),
    el("p", {}, buttons.flatMap((b) => [b, " "]), copy, copied),
    el("textarea", { className: "redact-summary", readOnly: true, rows: 8, cols: 100, value: summary.summary_text ?? "" }),
    el("h3", {}, `Mapping (original → replacement, ${rows.length}; shown here, never written into the capture)`),
    table(["category", "original", "replacement"], rows.slice(0, 200)),
  );
}
