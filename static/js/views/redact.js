// Redact tab: choose what to replace, see what will change, redact in this
// page (nothing is uploaded), and only after the engine's verification found
// no leak offer the evidence pack: redacted capture, HTML report, JSON report,
// mapping table and a summary for tickets. A refusal lists its frames beside
// the policies that resolve it.
//
// The shell draws the tab once per capture and keeps it across tab switches:
// options typed, a redaction running and its result and downloads are all
// still there when the user comes back.

import { dataTable, el, pagedTable } from "./dom.js";

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
  strings: "strings asked for",
  patterns: "regular expression matches",
};
const SAMPLES = 5;

// The engine's POLICIES (py/sipdiag/redaction/redactor.py): what happens to a
// frame the redactor cannot prove clean.
export const POLICIES = [
  ["scrub", "Scrub (default)", "keep the frame, with everything past the headers the redactor understands zeroed: frame numbers stay as in the original"],
  ["drop", "Drop", "leave the frame out of the copy (later frame numbers shift)"],
  ["signalling", "Keep only signalling", "keep only SIP, SDP, RTP/RTCP, DNS and ICMP packets (the rest is left out), and scrub"],
  ["refuse", "Refuse", "write nothing and list the frames"],
];
const RESOLVE = [
  ["scrub", "Scrub these frames and try again"],
  ["drop", "Drop them"],
  ["signalling", "Keep only signalling"],
];

// The list options: one entry a line in a textarea.
const LISTS = [
  ["keep_addresses", "Leave these addresses unmasked", "One address or CIDR subnet per line (192.0.2.10, 198.51.100.0/24, 2001:db8::/32): kept as they are.", true],
  ["redact_strings", "Also redact these strings", "One per line, found in any letter case wherever they appear.", true],
  ["redact_regexes", "Also redact matches of these regular expressions", "One per line, in Python regular expression syntax; every match is replaced.", false],
];

function lines(text, trim) {
  return text.split(/\r?\n/).map((line) => (trim ? line.trim() : line)).filter((line) => line.trim() !== "");
}

function phaseLabel({ phase, round }) {
  const again = round > 1 ? ` (round ${round})` : "";
  if (phase === "learning") return "Learning names…";
  if (phase === "writing") return `Writing${again}…`;
  if (phase === "verifying") return `Verifying${again}…`;
  return "Redacting…";
}

function plural(count, one, many = `${one}s`) {
  return `${count} ${count === 1 ? one : many}`;
}

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
  return dataTable("redact-table", headers, rows.map((row) => el("tr", {}, row.map((cell) => el("td", {}, cell)))));
}

function baseName(name) {
  return name.replace(/\.(pcapng|pcap|cap)$/i, "");
}

export function render(report, container, api) {
  container.append(build(report, api));
}

function hint(id, text) {
  return el("p", { className: "redact-hint", id }, text);
}

function build(report, api) {
  const fileName = report.capture.file;
  // A real form: Enter in a field redacts (the CSP's form-action 'none' would refuse a submission anyway).
  const root = el("form", { className: "redact", noValidate: true });
  const checkboxes = OPTIONS.map(([name, label]) => {
    const input = el("input", { type: "checkbox", checked: true, name, id: `redact-${name}` });
    return { name, input, row: el("label", { className: "redact-option", htmlFor: input.id }, input, " ", label) };
  });
  const key = el("input", {
    type: "password",
    id: "redact-key",
    className: "filter redact-key",
    autocomplete: "off",
    spellcheck: false,
  });
  key.setAttribute("aria-describedby", "redact-key-hint");
  const keyHint = hint(
    "redact-key-hint",
    "Empty: no passphrase, a random key, so the replacements differ in every export. " +
      "With a passphrase the same value gets the same replacement in every file, here and with the command line's --key.",
  );

  const radios = POLICIES.map(([name, label, explanation]) => {
    const input = el("input", { type: "radio", name: "redact-policy", value: name, id: `redact-policy-${name}`, checked: name === "scrub" });
    input.setAttribute("aria-describedby", `${input.id}-hint`);
    return {
      name,
      input,
      row: el(
        "div",
        { className: "redact-policy-option" },
        el("label", { htmlFor: input.id }, input, " ", el("strong", {}, label)),
        hint(`${input.id}-hint`, explanation),
      ),
    };
  });
  const policy = () => radios.find((r) => r.input.checked)?.name ?? "scrub";

  // Every field the engine may refuse has a place for its message.
  const fields = {};
  const listFields = LISTS.map(([name, label, explanation, trim]) => {
    const input = el("textarea", { id: `redact-${name}`, name, rows: 3, spellcheck: false, className: "redact-list" });
    const error = el("p", { className: "redact-field-error", id: `redact-${name}-error`, hidden: true });
    input.setAttribute("aria-describedby", `redact-${name}-hint redact-${name}-error`);
    fields[name] = { input, error, label };
    return {
      name,
      trim,
      input,
      row: el("div", { className: "redact-field" }, el("label", { htmlFor: input.id }, label), hint(`redact-${name}-hint`, explanation), input, error),
    };
  });
  const keepOui = el("input", { type: "checkbox", id: "redact-keep_oui", name: "keep_oui" });
  keepOui.setAttribute("aria-describedby", "redact-keep_oui-hint");
  const keepOuiError = el("p", { className: "redact-field-error", hidden: true });
  fields.keep_oui = { input: keepOui, error: keepOuiError, label: "Keep MAC vendor prefixes (OUI)" };
  const policyError = el("p", { className: "redact-field-error", hidden: true });

  const start = el("button", { type: "submit", className: "redact-start" }, "Redact");
  const progress = el("progress", { className: "redact-progress", hidden: true });
  const phase = el("span", { className: "redact-phase" });
  const status = el("p", { className: "status redact-status", role: "status" });
  const results = el("div", { className: "redact-results" });
  const policyFieldset = el(
    "fieldset",
    { className: "redact-policy" },
    el("legend", {}, "Frames the redactor cannot read, or that still hold an original value"),
    radios.map((r) => r.row),
    policyError,
  );
  fields.policy = { input: radios[0].input, error: policyError, label: "Frames the redactor cannot read" };

  const previewRows = preview(report).map(({ category, count, samples }) => [
    CATEGORY_LABELS[category] ?? category,
    String(count),
    samples.join(", "),
  ]);

  root.append(
    el("p", {}, "The redacted copy is made in this page; nothing is uploaded. Addresses are always replaced (private stays private, subnets stay subnets) and digest nonces and responses always go."),
    el("div", { className: "redact-field" }, el("label", { htmlFor: key.id }, "Passphrase"), key, keyHint),
    policyFieldset,
    el("fieldset", { className: "redact-options" }, el("legend", {}, "Also replace"), checkboxes.map((c) => c.row)),
    el(
      "fieldset",
      { className: "redact-more" },
      el("legend", {}, "Keep or add"),
      listFields.map((f) => f.row),
      el(
        "div",
        { className: "redact-field" },
        el("label", { htmlFor: keepOui.id, className: "redact-check" }, keepOui, " Keep MAC vendor prefixes (OUI)"),
        hint("redact-keep_oui-hint", "The first 3 bytes of each MAC address stay: the vendor remains readable, the device does not."),
        keepOuiError,
      ),
    ),
    el("h3", {}, "What will be replaced (from the analysis)"),
    table(["category", "seen", "examples"], previewRows),
    el("p", { className: "redact-run" }, start, " ", phase, " ", progress),
    status,
    results,
  );

  function clearErrors() {
    for (const { input, error } of Object.values(fields)) {
      input.removeAttribute("aria-invalid");
      error.hidden = true;
      error.textContent = "";
    }
  }

  async function run(chosen = null) {
    if (chosen) radios.forEach((r) => (r.input.checked = r.name === chosen));
    clearErrors();
    const options = Object.fromEntries(checkboxes.map(({ name, input }) => [name, input.checked]));
    options.keep_oui = keepOui.checked;
    for (const { name, input, trim } of listFields) options[name] = lines(input.value, trim);
    const chosenPolicy = policy();
    start.disabled = true;
    results.replaceChildren();
    status.className = "status redact-status";
    status.textContent = "";
    phase.textContent = "Starting…";
    progress.hidden = false;
    progress.removeAttribute("value");
    const onProgress = (event) => {
      progress.max = event.total || 1;
      progress.value = event.done;
      phase.textContent = phaseLabel(event);
    };
    try {
      const { blob, summary } = await api.redact({ key: key.value, options, policy: chosenPolicy, onProgress });
      showResult({ results, status, blob, summary, fileName, api, run });
    } catch (error) {
      const field = fields[error.option];
      status.className = "error redact-status";
      if (field) {
        // The engine's one line, under the field it is about.
        field.error.textContent = error.message;
        field.error.hidden = false;
        field.input.setAttribute("aria-invalid", "true");
        status.textContent = `Not redacted: see the message under “${field.label}”.`;
        field.input.focus();
      } else {
        status.textContent = `Not redacted: ${error.message}`;
      }
    } finally {
      start.disabled = false;
      progress.hidden = true;
      phase.textContent = "";
    }
  }

  root.addEventListener("submit", (event) => {
    event.preventDefault();
    if (!start.disabled) run();
  });
  return root;
}

// Scrubbed and dropped frames, one row each, with the engine's reason.
function handledFrames(summary) {
  const rows = [
    ...(summary.frames_scrubbed ?? []).map(({ frame, why }) => ({ frame, handled: "scrubbed", why })),
    ...(summary.frames_dropped ?? []).map(({ frame, why }) => ({ frame, handled: "dropped", why })),
  ].sort((a, b) => a.frame - b.frame);
  if (rows.length === 0) return el("p", { className: "empty" }, "No frame was scrubbed or dropped: every packet was read and rewritten.");
  const row = ({ frame, handled, why }) => el("tr", {}, el("td", { className: "num" }, `#${frame}`), el("td", { className: "redact-handled" }, handled), el("td", {}, why));
  return el(
    "details",
    { className: "redact-frames" },
    el("summary", {}, `Scrubbed and dropped frames (${rows.length}), with the reason for each`),
    pagedTable("redact-table", ["frame", "handled", "why"], rows, row),
  );
}

// What stops the export, one row per frame: frames the policy refuses and
// original values the verification still found.
function blockers(summary) {
  const byFrame = new Map();
  const add = (frame, text) => {
    const key = frame ?? -1; // -1: the file as a whole
    if (!byFrame.has(key)) byFrame.set(key, []);
    byFrame.get(key).push(text);
  };
  for (const { frame, why } of summary.refused ?? []) add(frame, `not read: ${why}`);
  for (const { frame, what } of summary.leak_locations ?? []) add(frame, `still in the copy: ${what}`);
  const rows = [...byFrame].sort(([a], [b]) => a - b);
  const row = ([frame, texts]) => el("tr", {}, el("td", { className: "num" }, frame < 0 ? "whole file" : `#${frame}`), el("td", {}, texts.map((t) => el("div", {}, t))));
  return { count: rows.filter(([frame]) => frame >= 0).length, table: pagedTable("redact-table redact-blockers", ["frame", "found"], rows, row) };
}

function showResult({ results, status, blob, summary, fileName, api, run }) {
  const refused = summary.refused ?? [];
  // The engine counts a changed packet count as a leak too: leaks and refusals alone decide.
  const verified = summary.leaks === 0 && refused.length === 0 && blob !== null;
  const handled = summary.handled ?? { rewritten: summary.packets_out, scrubbed: 0, dropped: 0 };
  const rounds = summary.rounds > 1 ? `, in ${summary.rounds} rounds` : "";
  if (verified) {
    status.className = "status redact-status redact-verified";
    status.textContent = "Verified: no original value found in the redacted copy.";
    results.append(
      el(
        "p",
        { className: "redact-counts" },
        `${summary.packets_out} of ${summary.packets_in} packets written: `,
        el("strong", {}, String(handled.rewritten)), " rewritten, ",
        el("strong", {}, String(handled.scrubbed)), " scrubbed, ",
        el("strong", {}, String(handled.dropped)), ` dropped; ${plural(summary.addresses_replaced, "address", "addresses")} replaced${rounds}.`,
      ),
    );
  } else {
    status.className = "error redact-status redact-refused";
    const reasons = [];
    if (refused.length) reasons.push(`${plural(refused.length, "frame")} the redactor cannot read (policy “refuse”)`);
    if (summary.leaks) reasons.push(`${plural(summary.leaks, "original value")} still in the copy`);
    status.textContent = `Refused: ${reasons.join(" and ") || "the copy could not be verified"}; nothing can be downloaded.`;
    const { count, table: where } = blockers(summary);
    const buttons = RESOLVE.filter(([policy]) => policy !== summary.policy || refused.length).map(([policy, label]) => {
      const button = el("button", { type: "button", className: "redact-resolve", "data-policy": policy }, label);
      button.addEventListener("click", () => run(policy));
      return button;
    });
    results.append(
      el(
        "div",
        { className: "redact-refusal" },
        el("div", {}, el("h3", {}, `What stops the export (${plural(count, "frame")})`), where),
        el(
          "div",
          { className: "redact-resolve-box" },
          el("h3", {}, "Resolve it"),
          el("p", {}, "Run again with these frames handled:"),
          el("p", { className: "redact-resolve-buttons" }, buttons.flatMap((b) => [b, " "])),
          el("p", { className: "redact-hint" }, "Scrub keeps the frames with their unread bytes zeroed, drop leaves them out, signalling keeps only SIP, SDP, RTP/RTCP, DNS and ICMP."),
        ),
      ),
    );
  }

  const counts = Object.entries(summary.replaced ?? {}).map(([category, count]) => [CATEGORY_LABELS[category] ?? category, String(count)]);
  counts.unshift([CATEGORY_LABELS.addresses, String(summary.addresses_replaced)]);
  const replaced = [el("h3", {}, "Replaced"), table(["category", "values"], counts)];
  if (!verified) {
    results.append(...replaced);
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
  // The downloads first, then the detail behind them.
  results.append(
    el("h3", {}, "Evidence pack"),
    el("p", { className: "redact-downloads" }, buttons.flatMap((b) => [b, " "]), copy, copied),
    handledFrames(summary),
    ...replaced,
    el("h3", {}, el("label", { htmlFor: "redact-summary" }, "Summary for a ticket")),
    el("textarea", { className: "redact-summary", id: "redact-summary", readOnly: true, rows: 8, cols: 100, value: summary.summary_text ?? "" }),
    el("h3", {}, `Mapping (original → replacement, ${rows.length}; shown here, never written into the capture)`),
    table(["category", "original", "replacement"], rows.slice(0, 200)),
  );
}
