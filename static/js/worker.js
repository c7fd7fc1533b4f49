// The engine host: this worker owns Pyodide so the page never freezes. It is a
// classic worker (no import/export, no import.meta; it loads Pyodide with
// dynamic import()): Chromium refuses module workers made from blob: URLs in a
// file:// page, and the single file has to work from file://.
// Protocol (docs/DESIGN.md "page worker protocol"):
//   page -> {type:"init", files?}             worker -> {type:"ready", ms} | {type:"boot-error", message}
//   page -> {type:"analyze", id, file}        worker -> {type:"progress", id, done, total}* then
//                                                       {type:"result", id, report} | {type:"error", id, message}
//   page -> {type:"redact", id, file, key, options}
//                                             worker -> progress* then {type:"result", id, blob, summary} | error
//                                                       (blob is null when summary.leaks > 0)
// `files` is present only in the single-file build: the site's files as bytes
// ({path: Uint8Array}), served to Pyodide by an in-memory fetch (there is no
// server). The page inflates them; the worker makes its own blob: URLs, as a
// blob worker of a file:// page cannot import the page's blob: URLs.

const ENGINE_ARCHIVE = "py/sipdiag.zip";
const CHUNK_SIZE = 4 * 1024 * 1024;
// Where the single file's embedded assets appear to live; never a network address.
const EMBEDDED_ROOT = "embedded:/";

// Python side of the protocol: every step returns JSON text {"value": ...} or
// {"error": "one line"}, so the page shows a sentence, never a traceback.
const GLUE = `
import json, traceback
import sipdiag

jobs = {}

def guard(step):
    try:
        return json.dumps({"value": step()})
    except sipdiag.CaptureError as error:
        return json.dumps({"error": str(error)})
    except Exception as error:
        traceback.print_exc()  # the full story goes to the browser console for developers
        return json.dumps({"error": f"the engine failed on this file ({type(error).__name__}: {error})"})

def analyze_start(job, name):
    def step():
        jobs[job] = sipdiag.CaptureAnalysis(name)
    return guard(step)

def analyze_feed(job, chunk):
    def step():
        jobs[job].feed(chunk.to_bytes())
    return guard(step)

def analyze_finish(job):
    return guard(lambda: jobs.pop(job).finish())

def redact_start(job, name, key, options_json):
    def step():
        from sipdiag.redaction.redactor import CaptureRedactor
        jobs[job] = CaptureRedactor(name, key or None, json.loads(options_json) or None)
    return guard(step)

def redact_learn(job, chunk):
    return guard(lambda: jobs[job].learn(chunk.to_bytes()))

def redact_finish_learning(job):
    return guard(lambda: jobs[job].finish_learning())

# The redacted bytes go straight back to JavaScript chunk by chunk (into a
# Blob, which Chromium may keep on disk): the wasm heap never holds the copy.
written = {}

def redact_feed(job, chunk):
    def step():
        written[job] = jobs[job].feed(chunk.to_bytes())
    return guard(step)

def redact_finish(job):
    def step():
        written[job] = jobs[job].finish()
    return guard(step)

def redact_written(job):
    return written.pop(job, b"")

def redact_verify_start(job):
    def step():
        jobs[job] = jobs[job].start_verification()
    return guard(step)

def redact_verify_feed(job, chunk):
    return guard(lambda: jobs[job].feed(chunk.to_bytes()))

def redact_verify_finish(job):
    return guard(lambda: jobs.pop(job).finish())

def drop(job):
    jobs.pop(job, None)
    written.pop(job, None)
`;

let glue = null;

const CONTENT_TYPES = { mjs: "text/javascript", wasm: "application/wasm", json: "application/json" };

// Pyodide fetches its runtime files from indexURL; in the single file they come
// from memory, and anything else is refused: nothing may leave the page.
function serveFromMemory(files) {
  globalThis.fetch = async (input) => {
    const url = String(input instanceof Request ? input.url : input);
    const bytes = url.startsWith(EMBEDDED_ROOT) ? files[url.slice(EMBEDDED_ROOT.length)] : undefined;
    if (!bytes) throw new TypeError(`sipdiag: refused to fetch ${url} (not part of this page)`);
    const type = CONTENT_TYPES[url.split(".").pop()] ?? "application/octet-stream";
    return new Response(bytes, { headers: { "Content-Type": type } });
  };
}

async function moduleFromBytes(bytes) {
  return import(URL.createObjectURL(new Blob([bytes], { type: "text/javascript" })));
}

async function boot(files) {
  const started = performance.now();
  // Pyodide refuses classic workers because it would load its scripts with
  // importScripts; it probes for that function. This worker loads everything
  // with import(), so it hides importScripts and Pyodide takes the module path.
  self.importScripts = undefined;
  let root, loadPyodide, createPyodideModule;
  if (files) {
    serveFromMemory(files);
    root = EMBEDDED_ROOT;
    ({ loadPyodide } = await moduleFromBytes(files["pyodide/pyodide.mjs"]));
    // pyodide.mjs would import pyodide.asm.mjs from indexURL; a module import cannot use our fetch.
    createPyodideModule = (await moduleFromBytes(files["pyodide/pyodide.asm.mjs"])).default;
  } else {
    root = new URL("../../", self.location.href).href; // this file is static/js/worker.js
    ({ loadPyodide } = await import(root + "pyodide/pyodide.mjs"));
  }
  const pyodide = await loadPyodide({
    indexURL: root + "pyodide/",
    createPyodideModule,
    stdout: (line) => console.log(line),
    stderr: (line) => console.warn(line),
  });
  const response = await fetch(root + ENGINE_ARCHIVE);
  if (!response.ok) throw new Error(`${ENGINE_ARCHIVE} is missing from this site (HTTP ${response.status})`);
  const engine = await response.arrayBuffer();
  const sitePackages = pyodide.runPython("import sysconfig; sysconfig.get_paths()['purelib']");
  pyodide.unpackArchive(engine, "zip", { extractDir: sitePackages });
  const namespace = pyodide.globals.get("dict")();
  pyodide.runPython(GLUE, { globals: namespace });
  glue = new Map(
    ["analyze_start", "analyze_feed", "analyze_finish", "redact_start", "redact_learn", "redact_finish_learning",
     "redact_feed", "redact_finish", "redact_written", "redact_verify_start", "redact_verify_feed",
     "redact_verify_finish", "drop"].map((name) => [name, namespace.get(name)]),
  );
  return performance.now() - started;
}

function call(name, ...args) {
  const outcome = JSON.parse(glue.get(name)(...args));
  if ("error" in outcome) throw new EngineError(outcome.error);
  return outcome.value;
}

class EngineError extends Error {}

// Feeds a blob in slices so memory stays bounded and progress can be shown.
// Progress counts bytes of the user's file (`size`); a job that reads several
// times (`pass` of `passes`) shows one bar over all of them.
async function feedFile(id, blob, feedName, { pass = 0, passes = 1, size = blob.size, afterChunk = null } = {}) {
  const total = size * passes;
  if (pass === 0) postMessage({ type: "progress", id, done: 0, total });
  for (let done = 0; done < blob.size; ) {
    const chunk = new Uint8Array(await blob.slice(done, done + CHUNK_SIZE).arrayBuffer());
    call(feedName, id, chunk);
    afterChunk?.();
    done += chunk.length;
    postMessage({ type: "progress", id, done: size * pass + Math.round((size * done) / blob.size), total });
  }
}

async function analyze({ id, file }) {
  call("analyze_start", id, file.name ?? "capture");
  await feedFile(id, file, "analyze_feed");
  return { report: call("analyze_finish", id) };
}

async function redact({ id, file, key, options }) {
  call("redact_start", id, file.name ?? "capture", key ?? "", JSON.stringify(options ?? {}));
  // Three passes: learn every name (as the CLI does), write, then read the
  // written copy back to prove nothing original is left in it.
  await feedFile(id, file, "redact_learn", { pass: 0, passes: 3 });
  call("redact_finish_learning", id);
  const parts = [];
  const keepWritten = () => {
    const bytes = glue.get("redact_written")(id);
    parts.push(new Blob([bytes.toJs()]));
    bytes.destroy();
  };
  await feedFile(id, file, "redact_feed", { pass: 1, passes: 3, afterChunk: keepWritten });
  call("redact_finish", id);
  keepWritten();
  const output = new Blob(parts, { type: file.type || "application/octet-stream" });
  call("redact_verify_start", id);
  await feedFile(id, output, "redact_verify_feed", { pass: 2, passes: 3, size: file.size });
  const summary = call("redact_verify_finish", id);
  // The contract: a copy that still holds an original value is never handed out.
  return { blob: summary.leaks === 0 ? output : null, summary };
}

let ready = null;

self.onmessage = async ({ data }) => {
  if (data.type === "init") {
    ready = boot(data.files);
    ready.then(
      (ms) => postMessage({ type: "ready", ms }),
      (error) => postMessage({ type: "boot-error", message: `the engine could not start: ${error.message ?? error}` }),
    );
    return;
  }
  const jobs = { analyze, redact };
  try {
    await ready;
    postMessage({ type: "result", id: data.id, ...(await jobs[data.type](data)) });
  } catch (error) {
    if (glue) glue.get("drop")(data.id);
    const message = error instanceof EngineError ? error.message : `the engine failed: ${error.message ?? error}`;
    postMessage({ type: "error", id: data.id, message: message.split("\n")[0] });
  }
};
