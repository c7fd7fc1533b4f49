// Redact tab (minimal placeholder until the redaction view lands): writes a
// copy of the capture with addresses replaced, in this page, and offers it.

import { el } from "./findings.js";

export function render(report, container, api) {
  const key = el("input", { type: "password", placeholder: "passphrase (optional)", className: "filter" });
  const button = el("button", { type: "button" }, "Redact and download");
  const status = el("p", { className: "status", role: "status" });
  button.addEventListener("click", async () => {
    button.disabled = true;
    status.className = "status";
    status.textContent = "redacting…";
    try {
      const { blob, summary } = await api.redact({ key: key.value || null });
      status.textContent = `${summary.addresses_replaced} addresses replaced, ${summary.leaks} leaks.`;
      api.download(blob, `redacted-${report.capture.file}`);
    } catch (error) {
      status.className = "error";
      status.textContent = error.message;
    } finally {
      button.disabled = false;
    }
  });
  container.append(el("p", {}, "The redacted copy is written in this page; nothing is uploaded."), key, " ", button, status);
}
