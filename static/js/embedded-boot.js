// The single file (dist/sipdiag.html) has no server behind it: each embedded
// module becomes a blob: URL, with its relative imports pointed at the blob
// URLs of the modules it imports (build.py lists them in dependency order).
const embedded = JSON.parse(document.getElementById("sipdiag-embedded").textContent);
const moduleURLs = {};
for (const module of embedded.modules) {
  let source = module.source;
  for (const [specifier, target] of Object.entries(module.imports)) {
    for (const quote of ['"', "'"]) source = source.replaceAll(quote + specifier + quote, quote + moduleURLs[target] + quote);
  }
  moduleURLs[module.path] = URL.createObjectURL(new Blob([source], { type: "text/javascript" }));
}
globalThis.sipdiagEmbedded = { assets: embedded.assets, workerURL: moduleURLs["static/js/worker.js"] };
await import(moduleURLs["static/js/app.js"]);
