// The page: window.sipdiag (the API the UI, power users and tests share) and the UI shell.
import { inflateBase64 } from "./packed.js";
import * as summaryView from "./views/summary.js";
import * as findingsView from "./views/findings.js";
import * as registrationsView from "./views/registrations.js";
import * as callsView from "./views/calls.js";
import * as dnsView from "./views/dns.js";
import * as messagesView from "./views/messages.js";
import * as rtpView from "./views/rtp.js";
import * as redactView from "./views/redact.js";

// name (also the URL hash), label, view, and what the label counts.
const TABS = [
  { name: "findings", label: "Findings", view: findingsView, count: (report) => report.findings.length },
  { name: "registrations", label: "Registrations", view: registrationsView, count: (report) => report.registrations.length },
  { name: "calls", label: "Calls", view: callsView, count: (report) => report.calls.length },
  { name: "dns", label: "DNS", view: dnsView, count: (report) => report.dns.length },
  { name: "messages", label: "SIP messages", view: messagesView, count: (report) => report.sip_messages.length },
  { name: "rtp", label: "RTP streams", view: rtpView, count: (report) => rtpView.streamRows(report).length },
  { name: "redact", label: "Redact", view: redactView, count: null },
];
const FIRST_TAB = TABS[0].name;

// Set by the single file's bootstrap: the worker's blob URL and the embedded assets.
const embedded = globalThis.sipdiagEmbedded ?? null;

// What the worker's memory guard judges the limit by (engineMemoryLimit in worker.js):
// ?memory-limit=MB overrides the rest (tests; users who know their machine).
// performance.memory is the page's only (a worker has none).
function browserMemory() {
  const limitMB = Number(new URLSearchParams(location.search).get("memory-limit")) || null;
  return { limitMB, deviceMemory: navigator.deviceMemory ?? null, jsHeapSizeLimit: performance.memory?.jsHeapSizeLimit ?? null };
}

// The single file's runtime files are inflated here and handed over (transferred, not copied).
async function startWorker(worker) {
  const memory = browserMemory();
  if (!embedded) {
    worker.postMessage({ type: "init", memory });
    return;
  }
  const paths = Object.keys(embedded.assets).filter((path) => !path.startsWith("static/"));
  const files = Object.fromEntries(
    await Promise.all(paths.map(async (path) => [path, await inflateBase64(embedded.assets[path])])),
  );
  worker.postMessage({ type: "init", files, memory }, Object.values(files).map((bytes) => bytes.buffer));
}

function createEngine() {
  const worker = new Worker(embedded ? embedded.workerURL : new URL("./worker.js", import.meta.url), {
    name: "sipdiag-engine",
  });
  const pending = new Map();
  const listeners = { progress: new Set(), ready: new Set() };
  let nextId = 1;
  let readyMs = null;
  // How the engine started: its steps ([name, ms since this page began loading]) and what
  // became of the engine snapshot ("restored", "stored", "not kept: why"; null until known);
  // memory: the guard's {limit, idle} in bytes (null until known).
  const boot = { phases: [], snapshot: null, memory: null };
  const phases = (marks) => marks.map(([name, epoch]) => [name, epoch - performance.timeOrigin]);
  // Each report's id in the worker, which keeps it for the ladders and the HTML report.
  const reportIds = new WeakMap();
  const reportId = (report) => {
    if (!reportIds.has(report)) throw new Error("this report did not come from sipdiag.analyze");
    return reportIds.get(report);
  };
  let settleReady;
  const ready = new Promise((resolve, reject) => (settleReady = { resolve, reject }));

  const emit = (event, detail) => listeners[event].forEach((listener) => listener(detail));
  worker.onmessage = ({ data }) => {
    if (data.type === "ready") {
      readyMs = data.ms;
      boot.phases = phases(data.marks);
      settleReady.resolve();
      emit("ready", { ms: data.ms });
    } else if (data.type === "prepared") {
      Object.assign(boot, { phases: phases(data.marks), snapshot: data.snapshot, memory: data.memory });
    } else if (data.type === "boot-error") {
      settleReady.reject(new Error(data.message));
    } else if (data.type === "progress") {
      // {done, total, phase, round}, and an analysis's `messages` (SIP messages decoded so far).
      const { type: _type, id, ...progress } = data;
      emit("progress", { id, ...progress });
      pending.get(id)?.onProgress?.(progress);
    } else {
      const job = pending.get(data.id);
      pending.delete(data.id);
      // memory: the guard stopped reading ({size, read, messages, used, limit, offer}).
      const detail = { option: data.option ?? null, memory: data.memory ?? null };
      if (data.type === "error") job.reject(Object.assign(new Error(data.message), detail));
      else job.resolve(data);
    }
  };
  // A worker that dies (out of memory, failed script) must not leave a spinner turning.
  worker.onerror = (event) => {
    const error = new Error(`the engine stopped: ${event.message ?? "worker error"}`);
    settleReady.reject(error);
    pending.forEach((job) => job.reject(error));
    pending.clear();
  };
  startWorker(worker).catch((error) => settleReady.reject(error));

  // onProgress hears this request's progress only (the "progress" event hears every request's).
  function request(message, onProgress = null, id = nextId++) {
    return new Promise((resolve, reject) => {
      pending.set(id, { resolve, reject, onProgress });
      worker.postMessage({ ...message, id });
    });
  }

  return {
    ready,
    get readyMs() {
      return readyMs;
    },
    boot,
    async analyze(fileOrBlob) {
      const result = await request({ type: "analyze", file: fileOrBlob });
      reportIds.set(result.report, result.reportId);
      return result.report;
    },
    // SVG text of a ladder drawn by the engine (py/sipdiag/ladder.py): these Call-IDs in one
    // diagram, or every SIP message when calls is null.
    async ladder(report, { calls = null, perPort = false, collapseRetransmissions = false } = {}) {
      const options = { per_port: perPort, collapse_retransmissions: collapseRetransmissions };
      const result = await request({ type: "ladder", report: reportId(report), calls, options });
      return result.svg;
    },
    // The readable report (py/sipdiag/html_report.py): one self-contained HTML document.
    async htmlReport(report) {
      const result = await request({ type: "html-report", report: reportId(report) });
      return result.html;
    },
    // The report carries no message text (as the CLI's analyze --json): the worker reads the
    // index-th SIP message of a frame back from the file. Its text, or null for no such message.
    async messageText(report, frame, index = 0) {
      return (await request({ type: "message-text", report: reportId(report), frame, index })).text;
    },
    // The report as a Blob of the CLI's analyze --json bytes, written by the worker a part at a time.
    async reportJson(report) {
      return (await request({ type: "report-json", report: reportId(report) })).blob;
    },
    // The page's own analysis: the worker keeps this report (the last one so
    // kept) for rows() and locate(); `reportId` names it. onProgress hears its
    // phases ("reading", "analyzing", "building views") with `messages`.
    async analyzeAndKeep(fileOrBlob, { onProgress = null } = {}) {
      const id = nextId++;
      const result = await request({ type: "analyze", file: fileOrBlob, keep: true }, onProgress, id);
      reportIds.set(result.report, id);
      return { report: result.report, reportId: id };
    },
    // One page of a kept report's table, sorted, filtered and searched in the
    // worker: {table, sort: [{column, descending}], filters, search, offset, limit, find?}
    // -> {rows: [{index, row, derived}], total, offset, found}.
    async rows(reportId, query) {
      const { rows, total, offset, found } = await request({ type: "rows", report: reportId, ...query });
      return { rows, total, offset, found };
    },
    // Where an evidence frame ({frame}) or a Call-ID ({call_id}) is shown: {tab, kind, value, ...} or null.
    async locate(reportId, query) {
      return (await request({ type: "locate", report: reportId, ...query })).where;
    },
    // policy: "scrub" (default), "drop", "signalling" or "refuse"; an empty or null key is a random one.
    // A refused option rejects with an Error whose `option` names it.
    async redact(fileOrBlob, { key = null, options = null, policy = "scrub", onProgress = null } = {}) {
      const result = await request({ type: "redact", file: fileOrBlob, key, options, policy }, onProgress);
      return { blob: result.blob, summary: result.summary };
    },
    // The RTP streams tab: a stream's ({src, dst, ssrc} of the report's calls[].media[]) per-packet
    // series and decoded G.711 voice, or several streams' at once (an array), read again from the file.
    async rtpStream(fileOrBlob, streams, { onProgress = null } = {}) {
      const selection = Array.isArray(streams) ? { streams } : { stream: streams };
      const result = await request({ type: "rtp-stream", file: fileOrBlob, ...selection }, onProgress);
      return Array.isArray(streams) ? result.streams : result.stream;
    },
    // {src, dst, ssrc} of the RTP stream that frame `frame` belongs to, or null.
    async rtpFrame(fileOrBlob, frame) {
      return (await request({ type: "rtp-frame", file: fileOrBlob, frame })).stream;
    },
    on(event, listener) {
      listeners[event].add(listener);
      return () => listeners[event].delete(listener);
    },
  };
}

const api = createEngine();
window.sipdiag = api;
// Unhandled until someone awaits it; the status line reports the failure instead.
api.ready.catch(() => {});

const $ = (id) => document.getElementById(id);
const ui = {
  status: $("engine-status"),
  progress: $("progress"),
  error: $("error"),
  memoryChoice: $("memory-choice"),
  analyzeFirst: $("analyze-first"),
  cancelCapture: $("cancel-capture"),
  result: $("result"),
  summary: $("summary"),
  tabs: $("tabs"),
  panel: $("tab-panel"),
  fileInput: $("file-input"),
  sampleButton: $("sample-button"),
  download: $("download-report"),
  downloadHtml: $("download-html"),
  overlay: $("drop-overlay"),
};
// {file, report, reportId, panels, selections}: panels holds each tab's
// content once drawn (below), selections each tab's last selection (its hash).
let current = null;
let currentTab = FIRST_TAB;
// The hash the page shows now: a hashchange to any other is Back, Forward or a typed link.
let shownHash = "";

const readyText = () => `engine ready (${(api.readyMs / 1000).toFixed(1)} s)`;
api.ready.then(
  () => (ui.status.textContent = readyText()),
  (error) => showError(error.message),
);

function showError(message) {
  ui.error.textContent = message;
  ui.error.hidden = false;
}

api.on("progress", ({ done, total }) => {
  ui.progress.max = total || 1;
  ui.progress.value = done;
});

// "12,345": the status line's counts, grouped as the page's English text is.
const COUNT = new Intl.NumberFormat("en");

// What the analysis of `name` is doing, in words. An event a 4 MB chunk while
// reading, then two: the live status region is never rewritten many times a second.
// No-break spaces keep "18 %" and "6,119 SIP messages" whole when a narrow screen wraps the line.
function analysisStatus(name, { done, total, phase, messages }) {
  const sip = `${COUNT.format(messages)}\u00a0SIP\u00a0messages`;
  if (phase === "reading") return `reading ${name} — ${Math.floor((100 * done) / (total || 1))}\u00a0% · ${sip}`;
  if (phase === "analyzing") return `analyzing ${sip}…`;
  return `${phase}…`;
}

// partial: `file` is the start of a file the memory guard refused (its offer taken).
async function open(file, partial = false) {
  ui.error.hidden = true;
  ui.memoryChoice.hidden = true;
  ui.progress.hidden = false;
  ui.progress.value = 0;
  ui.status.textContent = api.readyMs === null ? `loading engine… then reading ${file.name}` : `reading ${file.name}…`;
  const onProgress = (progress) => (ui.status.textContent = analysisStatus(file.name, progress));
  try {
    const { report, reportId } = await api.analyzeAndKeep(file, { onProgress });
    current = { file, report, reportId, panels: new Map(), selections: new Map() };
    ui.status.textContent = partial
      ? `analyzed the first ${file.size / MB} MB of ${file.name} only: the whole file needs more memory than this browser allows`
      : `analyzed ${file.name}`;
    show(report);
    // A cut-off file still yields a report; with nothing readable in it, say so up front.
    if (report.capture.packets === 0) {
      showError(`${file.name}: no packets could be read. ${report.capture.warnings.join(" ")}`.trim());
    }
  } catch (error) {
    // The previous capture's tabs must not stay on offer (its Redact tab would
    // redact a file the user has moved on from).
    current = null;
    ui.result.hidden = true;
    ui.summary.replaceChildren();
    ui.tabs.replaceChildren();
    ui.panel.replaceChildren();
    if (error.memory) {
      offerFirstPart(file, error);
    } else {
      ui.status.textContent = `could not analyze ${file.name}`;
      showError(`${file.name}: ${error.message}`);
    }
  } finally {
    ui.progress.hidden = true;
  }
}

// The memory guard stopped reading (error.memory: the worker's figures, its sentence in
// error.message): the first part it could read, or back to choosing a file.
let refused = null;

function offerFirstPart(file, error) {
  const { offer } = error.memory;
  refused = { file, offer };
  ui.status.textContent = `${file.name} is too large for this browser's memory`;
  showError(error.message);
  ui.analyzeFirst.hidden = offer === 0;
  ui.analyzeFirst.textContent = `Analyze the first ${offer / MB} MB only`;
  ui.memoryChoice.hidden = false;
  (offer ? ui.analyzeFirst : ui.cancelCapture).focus();
}

ui.analyzeFirst.addEventListener("click", () => {
  const { file, offer } = refused;
  open(new File([file.slice(0, offer)], file.name), true);
});

ui.cancelCapture.addEventListener("click", () => {
  refused = null;
  ui.memoryChoice.hidden = true;
  ui.error.hidden = true;
  ui.status.textContent = readyText();
  ui.fileInput.focus();
});

const MB = 1_000_000; // decimal, as the worker's sizes (its memory guard offers whole MB)

const viewApi = {
  get file() {
    return current?.file ?? null;
  },
  // The views' report is current.report: redact its file (never another one's).
  redact: (options) => (current ? api.redact(current.file, options) : Promise.reject(new Error("no capture is open"))),
  download,
  selectTab,
  // The RTP streams tab measures streams of this capture again (sipdiag.rtpStream / rtpFrame).
  rtpStream: (streams, options) => (current ? api.rtpStream(current.file, streams, options) : Promise.reject(new Error("no capture is open"))),
  rtpFrame: (frame) => (current ? api.rtpFrame(current.file, frame) : Promise.reject(new Error("no capture is open"))),
  // The engine's ladder (SVG text) of this capture's calls: calls are Call-IDs, null for all SIP.
  ladder: (calls, options) => api.ladder(current.report, { calls, ...options }),
  // A SIP message's text, read from the file on demand (the report has none).
  messageText: (frame, index) => api.messageText(current.report, frame, index),
  // A page of one of the report's tables, from the worker (dom.js workerTable).
  rows: (table, query) => api.rows(current.reportId, { table, ...query }),
  locate: (query) => api.locate(current.reportId, query),
  // Evidence links: the frame's place (a SIP message, a DNS query, a network
  // event, an RTP stream), or a finding's call ladder or registration row.
  async openFrame(frame) {
    const where = await viewApi.locate({ frame });
    if (!where) return go("messages", "frame", frame); // the message list says the frame is in no table
    return go(where.tab, where.kind, where.value);
  },
  async openCall(callId) {
    const where = await viewApi.locate({ call_id: callId });
    // A Call-ID that is neither a call nor a registration (OPTIONS, SUBSCRIBE...): its messages.
    return where ? go(where.tab, where.kind, where.value) : go("messages", "call", callId);
  },
  // A view tells the shell what the user selected in it: the URL follows, so Back returns here.
  selected(kind, value) {
    const hash = locationHash(currentTab, kind, value);
    current.selections.set(currentTab, hash);
    if (hash === shownHash) return;
    shownHash = hash;
    location.hash = hash;
  },
};

// #TAB or #TAB/KIND/VALUE (VALUE encodeURIComponent'ed): #messages/frame/12,
// #calls/call/<Call-ID>, #registrations/registration/<row index>, ...
function locationHash(tab, kind = null, value = null) {
  return kind === null ? `#${tab}` : `#${tab}/${kind}/${encodeURIComponent(value)}`;
}

function parseHash(hash) {
  const [tab, kind = null, ...rest] = hash.replace(/^#/, "").split("/");
  return { tab, kind, value: kind === null ? null : decodeURIComponent(rest.join("/")) };
}

// Goes to a place: the URL changes (a history entry) and the hash is routed.
function go(tab, kind = null, value = null) {
  const hash = locationHash(tab, kind, value);
  if (location.hash === hash) return route(hash); // no hashchange for the same hash: show it again
  location.hash = hash;
  return null;
}

// Shows a hash: its tab, and the tab's view selects what it names (its
// select(panel, kind, value, api) gives the element shown, or null).
async function route(hash) {
  const { tab, kind, value } = parseHash(hash);
  const entry = TABS.find((each) => each.name === tab);
  if (!entry) return selectTab(FIRST_TAB);
  shownHash = hash;
  showTab(tab);
  if (kind === null || !entry.view.select) return null;
  current.selections.set(tab, hash);
  const panel = current.panels.get(tab);
  const target = await entry.view.select(panel, kind, value, viewApi);
  // Still the place on screen (a later click may have moved on while rows loaded).
  if (target && shownHash === hash) {
    // The place a link led to, marked (and focused, for the keyboard and screen readers).
    document.querySelector(".route-target")?.classList.remove("route-target");
    target.classList.add("route-target");
    target.scrollIntoView({ block: target.offsetHeight > innerHeight / 2 ? "start" : "center" });
    target.focus({ preventScroll: true });
  }
  return target;
}

// A new capture opens on Findings, every tab drawn afresh from its report.
function show(report) {
  ui.result.hidden = false;
  ui.summary.replaceChildren();
  summaryView.render(report, ui.summary, viewApi);
  ui.tabs.replaceChildren(
    ...TABS.map(({ name, label, count }) => {
      const button = document.createElement("button");
      button.type = "button";
      button.role = "tab";
      button.id = `tab-${name}`;
      button.dataset.tab = name;
      button.setAttribute("aria-controls", ui.panel.id);
      button.append(label, ...(count ? [" ", tabCount(count(report))] : []));
      button.addEventListener("click", () => selectTab(name));
      return button;
    }),
  );
  selectTab(FIRST_TAB);
}

function tabCount(count) {
  const span = document.createElement("span");
  span.className = "tab-count";
  span.textContent = `(${count})`;
  return span;
}

// ARIA tabs: one tab in the Tab order, the arrow keys, Home and End move
// between tabs and show each at once (a kept panel shows instantly).
ui.tabs.addEventListener("keydown", (event) => {
  const names = TABS.map(({ name }) => name);
  const index = names.indexOf(event.target.dataset?.tab);
  const next = { ArrowRight: index + 1, ArrowLeft: index - 1, Home: 0, End: names.length - 1 }[event.key];
  if (index < 0 || next === undefined) return;
  event.preventDefault();
  const name = names[(next + names.length) % names.length];
  selectTab(name);
  document.getElementById(`tab-${name}`).focus();
});

// A tab chosen by the user: the tab with its last selection, a new place in the history.
function selectTab(name) {
  const hash = current.selections.get(name) ?? locationHash(name);
  showTab(name);
  shownHash = hash;
  if (location.hash !== hash) location.hash = hash;
}

function showTab(name) {
  currentTab = name;
  for (const button of ui.tabs.children) {
    const selected = button.dataset.tab === name;
    button.setAttribute("aria-selected", String(selected));
    button.tabIndex = selected ? 0 : -1;
  }
  ui.panel.setAttribute("aria-labelledby", `tab-${name}`);
  ui.panel.replaceChildren(panelFor(name));
}

// Each tab is drawn once per capture and kept while another tab shows:
// filters typed, rows opened, the selected call and a running redaction
// are all still there when the user comes back.
function panelFor(name) {
  let panel = current.panels.get(name);
  if (!panel) {
    panel = document.createElement("div");
    panel.className = `tab-content tab-content-${name}`;
    TABS.find((tab) => tab.name === name).view.render(current.report, panel, viewApi);
    current.panels.set(name, panel);
  }
  return panel;
}

// Back, Forward, a typed or followed link: the page shows what the hash names.
window.addEventListener("hashchange", () => {
  if (!current || location.hash === shownHash) return;
  route(location.hash);
});

function download(blob, name) {
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = name;
  link.click();
  setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
}

// What the CLI's analyze --json prints, byte for byte, streamed from the worker into a Blob.
ui.download.addEventListener("click", async () => {
  const { file, report } = current;
  try {
    download(await api.reportJson(report), `${file.name}.sipdiag.json`);
  } catch (error) {
    showError(`${file.name}: the report could not be written: ${error.message}`);
  }
});

// The readable report, written by the engine (the CLI's analyze --html writes the same bytes).
ui.downloadHtml.addEventListener("click", async () => {
  const { file, report } = current;
  try {
    const html = await api.htmlReport(report);
    download(new Blob([html], { type: "text/html" }), `${file.name}.sipdiag.html`);
  } catch (error) {
    showError(`${file.name}: the HTML report could not be made: ${error.message}`);
  }
});

ui.fileInput.addEventListener("change", () => {
  if (ui.fileInput.files.length) open(ui.fileInput.files[0]);
  ui.fileInput.value = ""; // choosing the same file again still analyzes it
});

async function sampleCapture() {
  if (embedded) {
    const packed = embedded.assets["static/sample.pcap"];
    if (!packed) throw new Error("this build has no sample capture");
    return new File([await inflateBase64(packed)], "sample.pcap");
  }
  const response = await fetch(new URL("../sample.pcap", import.meta.url));
  if (!response.ok) throw new Error("this build has no sample capture");
  return new File([await response.blob()], "sample.pcap");
}

ui.sampleButton.addEventListener("click", async () => {
  try {
    open(await sampleCapture());
  } catch (error) {
    showError(error.message);
  }
});

// Drag and drop anywhere: the overlay says what will happen.
let dragDepth = 0;
document.addEventListener("dragenter", (event) => {
  if (!event.dataTransfer.types.includes("Files")) return;
  dragDepth++;
  ui.overlay.hidden = false;
});
document.addEventListener("dragleave", () => {
  if (--dragDepth <= 0) {
    dragDepth = 0;
    ui.overlay.hidden = true;
  }
});
document.addEventListener("dragover", (event) => event.preventDefault());
document.addEventListener("drop", (event) => {
  event.preventDefault();
  dragDepth = 0;
  ui.overlay.hidden = true;
  const [file] = event.dataTransfer.files;
  if (file) open(file);
});
