// The engine host: this worker owns Pyodide so the page never freezes. It is a
// classic worker (no import/export, no import.meta; it loads Pyodide with
// dynamic import()): Chromium refuses module workers made from blob: URLs in a
// file:// page, and the single file has to work from file://.
// Protocol (docs/DESIGN.md "page worker protocol"):
//   page -> {type:"init", files?, memory}     worker -> {type:"ready", ms} | {type:"boot-error", message}
//                                                       then {type:"prepared", snapshot, marks, memory: {limit, idle}}
//     memory: {limitMB, deviceMemory, jsHeapSizeLimit}, what the memory guard's limit is chosen by
//     (engineMemoryLimit); prepared gives the limit and the bytes the engine holds at rest.
//   page -> {type:"analyze", id, file, keep?} worker -> {type:"progress", id, done, total, phase, round:0, messages}*
//                                                       then {type:"result", id, report} | {type:"error", id, message}
//                                                       | {type:"error", id, message, memory: {size, read, messages,
//                                                          used, limit, offer}} (the memory guard stopped reading)
//     phase "reading" (one event a chunk: done/total bytes), then "analyzing" (the file read, the
//     analyses run) and, with keep, "building views" (the report's tables are indexed); messages:
//     the SIP messages decoded so far, at "building views" the report's.
//     The report is the CLI's `analyze --json`: no message text. The worker keeps, beside it, where
//     each message is in the File (engine.MessageTexts) and reads a message back when asked (below).
//     keep: true keeps the report (Python side) for the tables below, under this request's id;
//     the worker keeps one such report, the last, and lets the one before go.
//   page -> {type:"message-text", id, report, frame, index}
//                                             worker -> {type:"result", id, text} (null: no such message)
//     the text of the index-th SIP message of that frame (0 unless one packet holds several), read
//     from the File's slice: what `analyze --with-text` puts in sip_messages[].text.
//   page -> {type:"report-json", id, report}  worker -> {type:"result", id, blob}
//     the report as the CLI's `analyze --json` prints it, byte for byte, written into a Blob a part
//     at a time (py/sipdiag/report_json.py): never one string of the whole document.
//   page -> {type:"rows", id, report, table, sort:[{column, descending}], filters:{name: value}, search,
//            offset, limit, find?}
//                                             worker -> {type:"result", id, rows:[{index, row, derived}], total, offset,
//                                                       found} | {type:"error", id, message}
//     report: the id of the kept analyze request. table: "messages", "calls", "registrations", "dns",
//     "network". Sorting, filtering and search run in Python (py/sipdiag/report_tables.py, where
//     each table's columns and filters are listed; a search of the messages reads their text from
//     the File again, in spans of many messages); `row` is the report's row, `index` its place in
//     the report's list, `derived` the fields the table computes (times, media per direction...).
//     find: a row's key (frame, Call-ID, registration index): the page served is the one holding
//     it and `found` its position (null when the query leaves it out).
//   page -> {type:"locate", id, report, frame} | {type:"locate", id, report, call_id}
//                                             worker -> {type:"result", id, where: {tab, kind, value, call_id?,
//                                                       stream?} | null}: where an evidence frame or a Call-ID
//                                                       is shown (report_tables.locate_frame / locate_call)
//   page -> {type:"redact", id, file, key, options, policy}
//                                             worker -> {type:"progress", id, done, total, phase, round}* then
//                                                       {type:"result", id, blob, summary} | {type:"error", id, message, option?}
//     phase "learning" (round 0), then "writing" and "verifying" for round 1, 2, ... until the
//     verification says no further round is needed (summary.again false): the CLI's loop.
//     blob is null when summary.leaks > 0 or summary.refused is not empty. `option` names the
//     option an error is about ("keep_addresses", "redact_regexes", ..., "policy").
//   page -> {type:"rtp-stream", id, file, stream} or {..., streams: [stream, ...]}  (stream: {src, dst, ssrc}
//             of the report's calls[].media[])
//                                             worker -> {type:"progress", id, done, total, phase:"measuring", round:0}*
//                                                       then {type:"result", id, stream} (or streams) | {type:"error", ...}
//     each measured stream: {src, dst, ssrc, summary, series, audio}; audio.pcm (Uint8Array of 16-bit
//     little-endian 8 kHz samples) when audio.playable (py/sipdiag/rtp_stream.py).
//   page -> {type:"rtp-frame", id, file, frame}  worker -> {type:"result", id, stream: {src, dst, ssrc} | null}
//   page -> {type:"ladder", id, report, calls, options}  worker -> {type:"result", id, svg} | {type:"error", ...}
//     report: the id of the analyze job that made it (the worker keeps the last REPORTS_KEPT);
//     calls: Call-IDs, or null for every SIP message; options: {per_port, collapse_retransmissions}
//   page -> {type:"html-report", id, report}             worker -> {type:"result", id, html} | {type:"error", ...}
// `files` is present only in the single-file build: the site's files as bytes
// ({path: Uint8Array}), served to Pyodide by an in-memory fetch (there is no
// server). The page inflates them; the worker makes its own blob: URLs, as a
// blob worker of a file:// page cannot import the page's blob: URLs.

// When each step of the start ended ([name, epoch ms], in order): the ready
// message carries them so bench/boot.py can say where the start goes. A few
// performance.now() calls, nothing printed.
const bootMarks = [];
const mark = (name) => bootMarks.push([name, performance.timeOrigin + performance.now()]);
const markAt = (name) => bootMarks.find((entry) => entry[0] === name)[1];
mark("worker script");

const ENGINE_ARCHIVE = "py/sipdiag.zip";
// Pyodide's standard library, compiled by build.py (COMPILE_STDLIB).
const STDLIB = "pyodide/python_stdlib.zip";
// The scan kernel (py/sipdiag/capture/kernel/scan.c): compiled once here, one
// instance per analysis and per RTP stream measurement, which the engine
// reaches as js.sipdiagKernel().
const KERNEL = "py/scan.wasm";
const CHUNK_SIZE = 4 * 1024 * 1024;
// Where the single file's embedded assets appear to live; never a network address.
const EMBEDDED_ROOT = "embedded:/";

// Python side of the protocol: every step returns JSON text {"value": ...} or
// {"error": "one line", "option"?: name}, so the page shows a sentence, never a traceback.
const GLUE = `
import json, traceback
import sipdiag

jobs = {}

class OptionError(Exception):
    """A redaction option the engine refused: its one-line message and the option's name."""

    def __init__(self, message, option):
        super().__init__(message)
        self.option = option

class TableError(Exception):
    """A table asked of a report no longer kept, or a query the tables refuse."""

class FileGone(Exception):
    """The File a report's message text is read from can no longer be read."""

def guard(step):
    try:
        return json.dumps({"value": step()})
    except OptionError as error:
        return json.dumps({"error": str(error), "option": error.option})
    except (sipdiag.CaptureError, ReportGone, TableError, FileGone) as error:
        return json.dumps({"error": str(error)})
    except Exception as error:
        traceback.print_exc()  # the full story goes to the browser console for developers
        return json.dumps({"error": f"the engine failed on this file ({type(error).__name__}: {error})"})

def analyze_start(job, name):
    def step():
        # No text kept: each message's is read back from the File when asked for.
        jobs[job] = sipdiag.CaptureAnalysis(name, keep_text=False)
    return guard(step)

# The file's slices go straight into a job's scan kernel (an analysis, or an RTP
# stream measurement: both capture/scan.KernelFed): the worker writes each at
# the address kernel_reserve gives, then kernel_commit walks it.
def kernel_memory(job):
    return jobs[job].kernel_memory

def kernel_reserve(job, size):
    return guard(lambda: jobs[job].reserve(size))

def kernel_commit(job, size):
    """An analysis says how many SIP messages it has decoded so far; other jobs say nothing (None)."""
    def step():
        fed = jobs[job]
        fed.commit(size)
        return fed.messages_read if isinstance(fed, sipdiag.CaptureAnalysis) else None
    return guard(step)

# The last reports, kept for the ladders and the HTML report the page asks for
# later (ladder.py and html_report.py draw from the report, in Python, so the
# page and the CLI draw the same). Two: a report analyzed from the console does
# not take away the one the page shows.
REPORTS_KEPT = 2
reports = {}

class ReportGone(Exception):
    """The page asked about a report the worker no longer keeps."""

class KeptReport:
    """A report, where its messages' text is (engine.MessageTexts: not the
    analysis, which is let go) and read(offset, length) over its File."""

    def __init__(self, report, texts, read_slice):
        self.report, self.texts = report, texts
        # read_slice: the worker's FileReaderSync over the File, a Uint8Array back.
        def read(offset, length):
            from pyodide.ffi import JsException

            try:
                return read_slice(offset, length).to_bytes()
            except JsException as error:  # the browser refuses a file changed or moved since it was chosen
                raise FileGone(f"the capture can no longer be read ({error.name}): it was changed or moved "
                               "since it was opened; open it again") from None
        self.read = read
        self.row_text = texts.row_text(report["sip_messages"], read)

    def message_texts(self, indexes):
        return self.texts.texts(indexes, self.read)

def analyze_finish(job, read_slice):
    """The analyses: the report, held for the ladders and the HTML report."""
    def step():
        analysis = jobs.pop(job)
        report = analysis.finish()
        reports[job] = KeptReport(report, analysis.texts(), read_slice)
        while len(reports) > REPORTS_KEPT:
            reports.pop(next(iter(reports)))
        return report
    return guard(step)

def analyze_keep(job):
    """The page's tables of that report, which ask for their rows from it; only the capture
    on screen is kept. Imported here, not at boot: the engine is ready sooner."""
    def step():
        from sipdiag.report_tables import ReportTables

        held = kept_report(job)
        kept.clear()
        kept[job] = ReportTables(held.report, held.message_texts)
    return guard(step)

def kept_report(report_id):
    if report_id not in reports:
        raise ReportGone("this capture's report is no longer held by the engine; open the capture again")
    return reports[report_id]

def ladder(report_id, call_ids_json, options_json):
    def step():
        from sipdiag.ladder import ladder_svg

        options = json.loads(options_json)
        held = kept_report(report_id)
        return ladder_svg(held.report, json.loads(call_ids_json),
                          per_port=bool(options.get("per_port")),
                          collapse_retransmissions=bool(options.get("collapse_retransmissions")),
                          message_text=held.row_text)
    return guard(step)

def html_report(report_id):
    def step():
        from sipdiag.html_report import document

        held = kept_report(report_id)
        return document(held.report, message_text=held.row_text)
    return guard(step)

def message_text(report_id, frame, index):
    def step():
        held = kept_report(report_id)
        return held.texts.message_text(frame, held.read, index)
    return guard(step)

class PartWriter:
    """A text stream handing the JS side a part of at least PART characters at a time."""
    PART = 1 << 20

    def __init__(self, hand_over):
        self.hand_over, self.pending, self.size = hand_over, [], 0

    def write(self, text):
        self.pending.append(text)
        self.size += len(text)
        if self.size >= self.PART:
            self.flush()

    def flush(self):
        if self.pending:
            self.hand_over("".join(self.pending))
            self.pending, self.size = [], 0

def report_json(report_id, hand_over):
    def step():
        from sipdiag.report_json import write_json

        out = PartWriter(hand_over)
        write_json(kept_report(report_id).report, out)
        out.write("\\n")  # as the CLI prints it
        out.flush()
    return guard(step)

# The report the page shows, by the job that made it: its tables (report_tables.ReportTables).
kept = {}

def kept_tables(report):
    if report not in kept:
        raise TableError("that capture is no longer open")
    return kept[report]

def table_rows(report, query_json):
    def step():
        query = json.loads(query_json)
        try:
            return kept_tables(report).rows(query["table"], query.get("sort"), query.get("filters"),
                                            query.get("search") or "", query.get("offset") or 0,
                                            query.get("limit") or 500, query.get("find"))
        except ValueError as error:  # an unknown table, column or filter
            raise TableError(str(error)) from None
    return guard(step)

def locate(report, query_json):
    def step():
        query = json.loads(query_json)
        tables = kept_tables(report)
        if "frame" in query:
            where = tables.locate_frame(query["frame"])
            if where and where["tab"] == "rtp":
                where.update(tables.rtp_call(query["frame"]))
            return where
        return tables.locate_call(query["call_id"])
    return guard(step)

# A redaction job is its redactor, which lives through every round, and the
# verification of the round's written copy while that is read back.
redactors = {}
verifications = {}

def redact_start(job, name, key, options_json, policy):
    def step():
        from sipdiag.redaction.redactor import CaptureRedactor

        options = json.loads(options_json)
        try:
            # An empty passphrase is no passphrase: a random key (as the CLI's --key "").
            redactors[job] = CaptureRedactor(name, key or None, options, policy)
            # The learning pass reads the file through the kernel like an analysis (kernel_reserve/commit).
            jobs[job] = redactors[job].learning_input
        except ValueError as error:
            # RedactionOptions.from_dict or the policy refused a value: say which field.
            raise OptionError(str(error).split("\\n")[0], option_at_fault(options, policy)) from None
    return guard(step)

def option_at_fault(options, policy):
    from sipdiag.redaction.redactor import POLICIES, RedactionOptions

    if policy not in POLICIES:
        return "policy"
    for name, value in (options or {}).items():
        try:
            RedactionOptions.from_dict({name: value})
        except ValueError:
            return name
    return None

def redact_finish_learning(job):
    def step():
        redactors[job].finish_learning()
        jobs[job] = redactors[job].writing_input  # round 1 reads the file into its own kernel
    return guard(step)

def redact_next_round(job):
    def step():
        redactors[job].start_writing()
        jobs[job] = redactors[job].writing_input
        return redactors[job].rounds  # the round now written
    return guard(step)

# The redacted bytes go straight back to JavaScript chunk by chunk (into a
# Blob, which Chromium may keep on disk): the wasm heap never holds the copy.
written = {}

def redact_finish(job):
    def step():
        written[job] = redactors[job].finish()
    return guard(step)

def redact_written(job):
    # After each slice kernel_commit walked: what the round wrote of it; after redact_finish, the rest.
    return written.pop(job) if job in written else redactors[job].drain()

def redact_verify_start(job):
    def step():
        verifications[job] = redactors[job].start_verification()
    return guard(step)

def redact_verify_feed(job, chunk):
    return guard(lambda: verifications[job].feed(chunk.to_bytes()))

def redact_verify_finish(job):
    def step():
        summary = verifications.pop(job).finish()
        if summary["again"]:
            # The redactor has noted the leaking frames; the page writes the file again.
            return {"again": True, "leaks": summary["leaks"]}
        redactors.pop(job)
        jobs.pop(job, None)
        return summary
    return guard(step)

def drop(job):
    jobs.pop(job, None)
    redactors.pop(job, None)
    verifications.pop(job, None)
    written.pop(job, None)

def release(job):
    """A job the memory guard stopped: its objects now rather than at the collector's next turn."""
    from sipdiag.engine import collect_abandoned

    drop(job)
    collect_abandoned()

def import_the_rest():
    """What analyses, tables, ladders, HTML reports, redaction and RTP streams import on
    first use: loaded right after ready (so the first job does not wait for them) and
    kept in the engine snapshot."""
    import sipdiag.engine, sipdiag.report_tables, sipdiag.ladder, sipdiag.html_report
    import sipdiag.redaction.redactor, sipdiag.rtp_stream
`;

// The RTP streams tab's jobs (py/sipdiag/rtp_stream.py): the capture is read
// again for the streams asked about, so the report need not hold their packets.
// A measurement walks the file in a scan kernel of its own, fed as the analysis is.
const RTP_GLUE = `
def rtp_stream_start(job, streams_json):
    def step():
        from sipdiag.rtp_stream import StreamMeasurement

        jobs[job] = StreamMeasurement(json.loads(streams_json))
    return guard(step)

def rtp_frame_start(job, frame):
    def step():
        from sipdiag.rtp_stream import FrameLookup

        jobs[job] = FrameLookup(frame)
    return guard(step)

def rtp_feed(job, chunk):
    return guard(lambda: jobs[job].feed(chunk.to_bytes()))

def rtp_finish(job):
    return guard(lambda: jobs[job].finish())

def rtp_pcm(job, index):
    return jobs[job].pcm(index)
`;
const RTP_GLUE_NAMES = ["rtp_stream_start", "rtp_frame_start", "rtp_feed", "rtp_finish", "rtp_pcm"];

let glue = null;

const CONTENT_TYPES = { mjs: "text/javascript", wasm: "application/wasm", json: "application/json" };

// Pyodide fetches its runtime files itself. The worker hands it the bytes it
// holds already: in the single file every file (anything else is refused:
// nothing may leave the page); over HTTP the standard library, which it has
// read to check the engine snapshot against. The rest goes to `network`.
function serveHeld(held, network) {
  globalThis.fetch = async (input, init) => {
    const url = String(input instanceof Request ? input.url : input);
    const bytes = held.get(url);
    if (bytes) {
      const type = CONTENT_TYPES[url.split(".").pop()] ?? "application/octet-stream";
      return new Response(bytes, { headers: { "Content-Type": type } });
    }
    if (network) return network(input, init);
    throw new TypeError(`sipdiag: refused to fetch ${url} (not part of this page)`);
  };
}

async function moduleFromBytes(bytes) {
  return import(URL.createObjectURL(new Blob([bytes], { type: "text/javascript" })));
}

// Pyodide's script: its loadPyodide, and in the single file its wasm module's
// script too (pyodide.mjs would import it from indexURL; a module import cannot use our fetch).
async function pyodideScripts(root, files) {
  if (!files) return { pyodide: await import(root + "pyodide/pyodide.mjs"), createPyodideModule: undefined };
  const [pyodide, wasmScript] = await Promise.all(
    [files["pyodide/pyodide.mjs"], files["pyodide/pyodide.asm.mjs"]].map(moduleFromBytes),
  );
  return { pyodide, createPyodideModule: wasmScript.default };
}

// The engine snapshot (Pyodide's memory snapshot: the interpreter with sipdiag,
// its modules and the glue imported, before any job) is kept in IndexedDB, the
// site's own storage, and restores in a fraction of Pyodide's start. It holds
// nothing but this build's code: the worker takes it before it handles any
// message that could carry a capture. One record, the last build's, used only
// when the Pyodide version, the glue, the engine archive and the standard
// library it was made from are byte for byte the ones this start loaded
// (Pyodide checks its own build id too): the snapshot's import caches point
// into those files. Anything else (another build, damage, no IndexedDB) starts
// Pyodide from scratch.
const SNAPSHOT_DB = "sipdiag-engine";
const SNAPSHOT_STORE = "snapshot";
const SNAPSHOT_RECORD = "engine";

function snapshotRequest(mode, act) {
  return new Promise((resolve, reject) => {
    const opening = indexedDB.open(SNAPSHOT_DB, 1);
    opening.onupgradeneeded = () => opening.result.createObjectStore(SNAPSHOT_STORE);
    opening.onerror = () => reject(opening.error);
    opening.onsuccess = () => {
      const db = opening.result;
      const transaction = db.transaction(SNAPSHOT_STORE, mode);
      const request = act(transaction.objectStore(SNAPSHOT_STORE));
      transaction.oncomplete = () => (db.close(), resolve(request.result));
      transaction.onerror = transaction.onabort = () => (db.close(), reject(transaction.error));
    };
  });
}

function sameBytes(a, b) {
  if (!(a instanceof Uint8Array) || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

// Pyodide's snapshot: a header (magic number, the header's size, ...), then the wasm
// memory in whole 64 KiB pages. Pyodide checks the magic number and its build id
// itself, but memory cut short would make its instantiation fail without ever
// settling, so that is refused here. (IndexedDB writes a record whole or not at all.)
const SNAPSHOT_MAGIC = 1886286592;

function wholeSnapshot(memory) {
  if (!(memory instanceof Uint8Array) || memory.length < 16) return false;
  const header = new DataView(memory.buffer, memory.byteOffset, 16);
  const headerSize = header.getUint32(4, true);
  return header.getUint32(0, true) === SNAPSHOT_MAGIC && headerSize >= 48 && headerSize % 16 === 0
    && memory.length > headerSize && (memory.length - headerSize) % 65536 === 0;
}

// The kept record, or null (none, or storage refused: private mode, quota).
async function keptSnapshot() {
  if (!self.indexedDB) return null;
  return snapshotRequest("readonly", (store) => store.get(SNAPSHOT_RECORD)).catch(() => null);
}

// The record's memory if it was made from exactly `identity`, else null.
function usableSnapshot(record, identity) {
  const matches = record && record.version === identity.version && record.glue === identity.glue
    && sameBytes(record.engine, identity.engine) && sameBytes(record.stdlib, identity.stdlib);
  return matches && wholeSnapshot(record.memory) ? record.memory : null;
}

function storeSnapshot(identity, memory) {
  return snapshotRequest("readwrite", (store) => store.put({ ...identity, memory }, SNAPSHOT_RECORD));
}

function forgetSnapshot() {
  return snapshotRequest("readwrite", (store) => store.delete(SNAPSHOT_RECORD)).catch(() => {});
}

async function fetchBytes(url, what) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${what} is missing from this site (HTTP ${response.status})`);
  return new Uint8Array(await response.arrayBuffer());
}

async function boot(files) {
  mark("init message");
  // Pyodide refuses classic workers because it would load its scripts with
  // importScripts; it probes for that function. This worker loads everything
  // with import(), so it hides importScripts and Pyodide takes the module path.
  self.importScripts = undefined;
  const root = files ? EMBEDDED_ROOT : new URL("../../", self.location.href).href; // this file is static/js/worker.js
  const network = files ? null : globalThis.fetch.bind(globalThis);
  if (files) serveHeld(new Map(Object.entries(files).map(([path, bytes]) => [root + path, bytes])), null);
  // Everything else the start reads, at once: the kernel (compiled meanwhile),
  // the engine archive, the standard library and the kept snapshot.
  const kernel = fetchBytes(root + KERNEL, KERNEL).then((bytes) => WebAssembly.compile(bytes));
  kernel.catch(() => {}); // awaited below; a failure is reported there
  const [scripts, engine, stdlib, record] = await Promise.all([
    pyodideScripts(root, files), fetchBytes(root + ENGINE_ARCHIVE, ENGINE_ARCHIVE),
    fetchBytes(root + STDLIB, STDLIB), keptSnapshot(),
  ]);
  if (network) serveHeld(new Map([[root + STDLIB, stdlib]]), network);
  const identity = { version: scripts.pyodide.version, glue: GLUE + RTP_GLUE, engine, stdlib };
  const snapshot = usableSnapshot(record, identity);
  mark("files read");
  const options = {
    indexURL: root + "pyodide/",
    createPyodideModule: scripts.createPyodideModule,
    stdout: (line) => console.log(line),
    stderr: (line) => console.warn(line),
    // Called once the wasm is instantiated, before the interpreter starts.
    fsInit: async () => mark("wasm instantiated"),
  };
  let pyodide = null;
  if (snapshot) {
    try {
      pyodide = await scripts.pyodide.loadPyodide({ ...options, _loadSnapshot: snapshot });
    } catch {
      await forgetSnapshot(); // it matched this build yet would not restore: never try it again
    }
  }
  const restored = pyodide !== null;
  // Only a start that can keep its snapshot makes one (Pyodide then tracks the JS globals Python touches).
  const keepable = !restored && Boolean(self.indexedDB);
  pyodide ??= await scripts.pyodide.loadPyodide({ ...options, _makeSnapshot: keepable });
  mark(restored ? "interpreter restored" : "interpreter started");
  const unpack = () => {
    const sitePackages = pyodide.runPython("import sysconfig; sysconfig.get_paths()['purelib']");
    pyodide.unpackArchive(engine, "zip", { extractDir: sitePackages });
  };
  // The glue is a module, so a restored snapshot finds it again by name.
  const module = pyodide.runPython(
    "import sys, types; sys.modules.setdefault('sipdiag_worker', types.ModuleType('sipdiag_worker'))",
  );
  const namespace = module.__dict__;
  if (!restored) {
    unpack();
    mark("engine unpacked");
    pyodide.runPython(GLUE, { globals: namespace });
    pyodide.runPython(RTP_GLUE, { globals: namespace });
  }
  glue = new Map(
    ["analyze_start", "kernel_memory", "kernel_reserve", "kernel_commit", "analyze_finish", "analyze_keep", "table_rows", "locate", "redact_start", "redact_finish_learning",
     "redact_next_round", "redact_finish", "redact_written", "redact_verify_start",
     "redact_verify_feed", "redact_verify_finish", "drop", "release", "ladder", "html_report", "message_text", "report_json", "import_the_rest",
     ...RTP_GLUE_NAMES].map((name) => [name, namespace.get(name)]),
  );
  mark("glue");
  pythonHeapInUse = heapInUse(pyodide._module);
  const compiled = await kernel;
  self.sipdiagKernel = () => new WebAssembly.Instance(compiled, {}).exports;
  mark("kernel compiled");
  return { pyodide, restored, keepable, identity, unpack };
}

// After ready and before the first job. A restored start puts the package's
// files back (the file system is not in the snapshot; tracebacks and late
// imports read them). Any other imports the modules the jobs import on first
// use, then takes the snapshot, here so it can hold nothing of a user's;
// storing it is left to run in the background.
function prepare({ pyodide, restored, keepable, identity, unpack }) {
  if (restored) {
    unpack();
    mark("engine unpacked");
    return "restored";
  }
  glue.get("import_the_rest")();
  mark("rest imported");
  if (!keepable) return "not kept: this browser gives the page no IndexedDB";
  let memory;
  try {
    memory = pyodide.makeMemorySnapshot();
  } catch (error) {
    return `not kept: ${error.message ?? error}`;
  }
  mark("snapshot made");
  return storeSnapshot(identity, memory).then(
    () => (mark("snapshot stored"), "stored"),
    (error) => `not kept: ${error?.message ?? error}`,
  );
}

function call(name, ...args) {
  const outcome = JSON.parse(glue.get(name)(...args));
  if ("error" in outcome) throw new EngineError(outcome.error, outcome.option ?? null);
  return outcome.value;
}

class EngineError extends Error {
  constructor(message, option = null) {
    super(message);
    this.option = option; // the redaction option (or "policy") a refused value belongs to
  }
}

// One progress bar per job over every read of the user's file. Each event says
// how many bytes are done and which pass runs now: the event that ends a pass
// names the next one, so the page's label changes as soon as it starts.
// An analysis's events also carry `messages`, the SIP messages decoded so far (null: not counted).
class Progress {
  constructor(id, size, passes) {
    Object.assign(this, { id, size, passes, pass: 0, phase: null, round: 0, messages: null });
  }

  // Pass `pass` (0-based) of this many begins: its phase and round.
  begin(pass, phase, round, passes = this.passes) {
    Object.assign(this, { pass, phase, round, passes });
    this.post(this.size * pass);
  }

  post(done) {
    const { id, size, passes, phase, round, messages } = this;
    const counted = messages === null ? {} : { messages };
    postMessage({ type: "progress", id, done, total: size * passes, phase, round, ...counted });
  }

  // A step after the last read of the file: the bar stays full.
  after(phase) {
    this.phase = phase;
    this.post(this.size * this.passes);
  }
}

// Feeds a blob in slices so memory stays bounded and progress can be shown.
// Progress counts bytes of the user's file (`progress.size`; the written copy
// is scaled to it). The last slice's event is left to whoever starts the next
// pass (`progress.begin`) or ends the job (`progress.post`).
async function feedFile(id, blob, feedName, progress, afterChunk = null) {
  const base = progress.size * progress.pass;
  for (let done = 0; done < blob.size; ) {
    const chunk = new Uint8Array(await blob.slice(done, done + CHUNK_SIZE).arrayBuffer());
    call(feedName, id, chunk);
    afterChunk?.();
    done += chunk.length;
    if (done < blob.size) progress.post(base + Math.round((progress.size * done) / blob.size));
  }
}

// The file read into the job's scan kernel memory (an analysis, an RTP
// measurement or a redaction pass): each slice is copied once, from the
// File's bytes to the address the engine reserved. Progress as feedFile's.
// afterChunk(done) hears after each slice how many bytes are read.
async function feedKernel(id, file, progress, afterChunk = null) {
  const memory = glue.get("kernel_memory")(id); // the kernel's WebAssembly.Memory itself
  const base = progress.size * progress.pass;
  for (let done = 0; done < file.size; ) {
    const slice = new Uint8Array(await file.slice(done, done + CHUNK_SIZE).arrayBuffer());
    const address = call("kernel_reserve", id, slice.length);
    new Uint8Array(memory.buffer, address, slice.length).set(slice); // after reserve: it may grow the memory
    // An analysis's commit returns its SIP messages so far; the other jobs' return null.
    progress.messages = call("kernel_commit", id, slice.length) ?? progress.messages;
    done += slice.length;
    afterChunk?.(done);
    if (done < file.size) progress.post(base + Math.round((progress.size * done) / file.size));
  }
}

// Phases: "reading" a chunk at a time, "analyzing", and for the page's own report
// (keep) "building views" while its tables are indexed; one result either way.
async function analyze({ id, file, keep }) {
  call("analyze_start", id, file.name ?? "capture");
  const progress = new Progress(id, file.size, 1);
  progress.messages = 0;
  progress.begin(0, "reading", 0);
  await feedKernel(id, file, progress, memoryGuard(id, file, progress));
  progress.after("analyzing");
  const report = call("analyze_finish", id, sliceReader(file));
  if (keep) {
    progress.messages = report.sip_messages.length; // with the ones only the end of the file completed
    progress.after("building views");
    call("analyze_keep", id);
  }
  return { report, reportId: id };
}

// The memory guard (issue 14): a capture too large for the machine is stopped
// while it is read, with a sentence, before the tab runs out of memory (a
// 250 MB SIP-only capture took the renderer to 4.7 GB and died with a broken
// message). File size alone cannot judge it: a 1 GB RTP capture reads in flat
// memory, while SIP messages stay in memory as parsed objects. So after each
// slice the guard measures what the engine holds, Python's heap in use plus
// the job's kernel memory, against `memoryLimit`.
// In use, not the heap's size: wasm memory never shrinks, so after one large
// capture the heap stays large; what dlmalloc has handed out (mallinfo's
// uordblks) falls back when a job's objects are freed, so a later, smaller
// capture is judged by what it needs itself. (Restarting the worker after a
// refusal would also empty the heap, but not after a large capture that
// passed, and would cost a start; sys.getallocatedblocks counts objects, not
// bytes, and misses buffers.)
const MB = 1_000_000; // sizes are shown in decimal units, as file managers show the file's
const GB = 1000 * MB;
// Pyodide's memory is wasm32: at most 65,536 pages of 64 KiB (its wasm's own maximum).
const WASM32_CEILING = 4 * 1024 ** 3;
// The heap a whole analysis ends with, per byte in use when reading ends: the
// analyses, the report and its JSON text come after reading, and the heap grows
// past what is in use (free fragments, emscripten's 20% steps). Measured on SIP-only
// captures of bench/make_signalling.py: 94 MB of heap (73 MB in use) at the end of
// reading 10 MB grew to 196 MB; 30 MB: 235 MB (198 MB in use) to 487 MB; 100 MB:
// 685 MB (631 MB in use) to 1,466 MB.
const HEAP_PER_BYTE_READ = 2.5;
// The first N MB offered after a refusal: what was read under the limit, with room to
// spare (the heap is not the same from one run to the next: a kept report, fragments).
const OFFER_MARGIN = 0.9;
let memoryLimit = null; // bytes, set by init (engineMemoryLimit)
let pythonHeapInUse = null; // set by boot: () => bytes

// The limit while reading: the smallest of what wasm32 allows once the work after
// reading is allowed for (1.7 GB), half the device's memory (navigator.deviceMemory, GB,
// rounded and capped by the browser: the tab is not alone on the machine) and the
// page's JS heap limit (performance.memory, Chromium), or `limitMB` (the page's
// ?memory-limit=MB) when given.
function engineMemoryLimit({ limitMB = null, deviceMemory = null, jsHeapSizeLimit = null } = {}) {
  if (limitMB > 0) return limitMB * MB;
  const limits = [WASM32_CEILING / HEAP_PER_BYTE_READ];
  if (deviceMemory > 0) limits.push((deviceMemory * 1024 ** 3) / 2);
  if (jsHeapSizeLimit > 0) limits.push(jsHeapSizeLimit);
  return Math.floor(Math.min(...limits));
}

// Bytes Python has allocated in Pyodide's heap now: dlmalloc's mallinfo(), a
// struct of ten 32-bit fields written where the first argument points (wasm32's
// way of returning a struct), uordblks the eighth. Pyodide's Module (`_module`)
// is its only way to the heap; its public API has none.
function heapInUse(module) {
  return () => {
    const info = module._malloc(40);
    module._mallinfo(info);
    const inUse = module.HEAPU32[info / 4 + 7]; // HEAPU32 read after malloc: the heap may have grown
    module._free(info);
    return inUse;
  };
}

function sizeText(bytes) {
  if (bytes >= GB) return `${(bytes / GB).toFixed(1)} GB`;
  return `${bytes >= 10 * MB ? Math.round(bytes / MB) : (bytes / MB).toFixed(1)} MB`;
}

// Thrown by the guard: the job is dropped and the page offers the first `offer` bytes.
class MemoryRefusal extends Error {
  constructor(name, memory) {
    const { size, read, messages, limit } = memory;
    const count = `${messages.toLocaleString("en-US")} SIP message${messages === 1 ? "" : "s"}`;
    super(`${name} (${sizeText(size)}) needs more memory than this browser allows: the engine had read `
      + `${sizeText(read)} (${count}) when it reached its limit of ${sizeText(limit)}.`);
    this.memory = memory;
  }
}

// afterChunk for an analysis: after each slice, what the engine holds against the limit.
// The last slice is judged too: the work after reading needs the margin the limit leaves.
function memoryGuard(id, file, progress) {
  const kernel = glue.get("kernel_memory")(id);
  let readUnderLimit = 0;
  return (read) => {
    const used = pythonHeapInUse() + kernel.buffer.byteLength;
    if (used <= memoryLimit) {
      readUnderLimit = read;
      return;
    }
    const offer = Math.floor((readUnderLimit * OFFER_MARGIN) / MB) * MB;
    throw new MemoryRefusal(file.name ?? "capture", {
      size: file.size, read, messages: progress.messages, used, limit: memoryLimit, offer,
    });
  };
}

// read(offset, length) over a File for the engine, which calls it synchronously
// (a search, a ladder's SDP): FileReaderSync, which workers have, reads just that slice.
function sliceReader(file) {
  const reader = new FileReaderSync();
  return (offset, length) => new Uint8Array(reader.readAsArrayBuffer(file.slice(offset, offset + length)));
}

function ladder({ report, calls, options }) {
  return { svg: call("ladder", report, JSON.stringify(calls ?? null), JSON.stringify(options ?? {})) };
}

function htmlReport({ report }) {
  return { html: call("html_report", report) };
}

function messageText({ report, frame, index }) {
  return { text: call("message_text", report, frame, index ?? 0) };
}

// The JSON's parts become Blob parts as they are written: neither heap holds the whole document.
function reportJson({ report }) {
  const parts = [];
  call("report_json", report, (text) => parts.push(new Blob([text])));
  return { blob: new Blob(parts, { type: "application/json" }) };
}

// One page of a kept report's table; `query` is the rows message itself.
async function rows({ report, ...query }) {
  return call("table_rows", report, JSON.stringify(query));
}

async function locate({ report, frame, call_id }) {
  return { where: call("locate", report, JSON.stringify(frame === undefined ? { call_id } : { frame })) };
}

// Exactly the CLI's loop (redact_command in py/sipdiag/redaction/redactor.py):
// learn every name, then write and verify the written copy until the
// verification asks for no further round (it scrubs leaking frames in the
// next one). Same key, options and policy: the same bytes as the CLI.
async function redact({ id, file, key, options, policy }) {
  call("redact_start", id, file.name ?? "capture", key ?? "", JSON.stringify(options ?? {}), policy ?? "scrub");
  // One bar: learning, then two passes a round (three when one round does).
  const progress = new Progress(id, file.size, 3);
  progress.begin(0, "learning", 0);
  await feedKernel(id, file, progress);
  call("redact_finish_learning", id);
  for (let round = 1; ; round = call("redact_next_round", id)) {
    progress.begin(2 * round - 1, "writing", round, Math.max(progress.passes, 2 * round + 1));
    const output = await writeCopy(id, file, progress);
    progress.begin(2 * round, "verifying", round);
    call("redact_verify_start", id);
    await feedFile(id, output, "redact_verify_feed", progress);
    progress.post(progress.size * progress.passes);
    const summary = call("redact_verify_finish", id);
    if (summary.again) continue;
    // The contract: a copy that still holds an original value, or frames the
    // policy refuses, is never handed out.
    const refused = summary.leaks > 0 || (summary.refused ?? []).length > 0;
    return { blob: refused ? null : output, summary };
  }
}

// One write pass: the redacted bytes leave Python chunk by chunk into Blob
// parts, so neither heap holds the whole copy.
async function writeCopy(id, file, progress) {
  const parts = [];
  const keepWritten = () => {
    const bytes = glue.get("redact_written")(id);
    parts.push(new Blob([bytes.toJs()]));
    bytes.destroy();
  };
  await feedKernel(id, file, progress, keepWritten);
  call("redact_finish", id);
  keepWritten();
  return new Blob(parts, { type: file.type || "application/octet-stream" });
}

// One stream, or a call's streams at once (one reading of the file, by a
// kernel of the job's own): each one's series and, for G.711, its voice decoded in Python.
async function rtpStream({ id, file, stream, streams }) {
  call("rtp_stream_start", id, JSON.stringify(streams ?? [stream]));
  try {
    const progress = new Progress(id, file.size, 1);
    progress.begin(0, "measuring", 0);
    await feedKernel(id, file, progress);
    progress.post(file.size);
    const measured = call("rtp_finish", id);
    measured.forEach((result, index) => {
      if (!result.audio?.playable) return;
      const pcm = glue.get("rtp_pcm")(id, index);
      result.audio.pcm = pcm.toJs();
      pcm.destroy();
    });
    return streams ? { streams: measured } : { stream: measured[0] };
  } finally {
    glue.get("drop")(id);
  }
}

// Which stream holds an RTP frame: the file is read only up to that frame.
async function rtpFrame({ id, file, frame }) {
  call("rtp_frame_start", id, frame);
  try {
    for (let done = 0; done < file.size; done += CHUNK_SIZE) {
      const chunk = new Uint8Array(await file.slice(done, done + CHUNK_SIZE).arrayBuffer());
      if (call("rtp_feed", id, chunk)) break;
    }
    return { stream: call("rtp_finish", id) };
  } finally {
    glue.get("drop")(id);
  }
}

// Jobs wait for `prepared`, not for ready: nothing of theirs reaches Python
// before the snapshot is taken.
let prepared = null;

self.onmessage = async ({ data }) => {
  if (data.type === "init") {
    memoryLimit = engineMemoryLimit(data.memory);
    const ready = boot(data.files);
    ready.then(
      () => postMessage({ type: "ready", ms: markAt("kernel compiled") - markAt("init message"), marks: bootMarks }),
      (error) => postMessage({ type: "boot-error", message: `the engine could not start: ${error.message ?? error}` }),
    );
    prepared = ready.then(prepare);
    // What became of the snapshot, once known (bench/boot.py and the tests wait for it).
    // With the memory guard's limit and what the engine at rest holds (the tests set a limit above it).
    prepared.then((snapshot) => postMessage({
      type: "prepared", snapshot, marks: bootMarks, memory: { limit: memoryLimit, idle: pythonHeapInUse() },
    }), () => {});
    return;
  }
  const jobs = { analyze, rows, locate, redact, ladder, "html-report": htmlReport, "message-text": messageText,
    "report-json": reportJson, "rtp-stream": rtpStream, "rtp-frame": rtpFrame };
  try {
    await prepared;
    postMessage({ type: "result", id: data.id, ...(await jobs[data.type](data)) });
  } catch (error) {
    if (error instanceof MemoryRefusal) {
      glue.get("release")(data.id);
      postMessage({ type: "error", id: data.id, message: error.message, memory: error.memory });
      return;
    }
    if (glue) glue.get("drop")(data.id);
    const message = error instanceof EngineError ? error.message : `the engine failed: ${error.message ?? error}`;
    const option = error instanceof EngineError && error.option ? { option: error.option } : {};
    postMessage({ type: "error", id: data.id, message: message.split("\n")[0], ...option });
  }
};
