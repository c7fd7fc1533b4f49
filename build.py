#!/usr/bin/env python3
"""Build, serve and test the sipdiag site.

    python3 build.py          # fresh clone -> dist/ (folder site) + dist/sipdiag.html (one file)
    python3 build.py serve    # build, then serve dist/ on http://127.0.0.1:8000
    python3 build.py test     # install test needs, build, run every test
    python3 build.py kernel   # recompile the scan kernel (scan.c -> the committed scan.wasm)

Nothing here talks to a CDN: Pyodide comes from npm (package.json pins it),
everything else from this clone.
"""

from __future__ import annotations

import base64
import functools
import gzip
import hashlib
import http.server
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent
DIST = ROOT / "dist"
PYODIDE_DIR = ROOT / "node_modules" / "pyodide"
# Only what the page loads: the CDN-only packages and the node/console files stay out.
PYODIDE_FILES = ("pyodide.mjs", "pyodide.asm.mjs", "pyodide.asm.wasm", "python_stdlib.zip", "pyodide-lock.json")
STDLIB = "python_stdlib.zip"
# Pyodide ships its standard library as source, which its interpreter compiled at every
# start: some 190 modules before Pyodide is up, about half of a start without the engine
# snapshot. The build compiles them once, with Pyodide's own interpreter under Node (the
# bytecode must be its Python's; Node is here for npm already), into sourceless
# unchecked-hash .pyc files in the same zip: the same modules, loaded without compiling.
# The members keep their order and the fixed timestamp, so the zip is reproducible.
COMPILE_STDLIB = """
import { readFileSync, writeFileSync } from "node:fs";
const [pyodideDir, source, target] = process.argv.slice(1);
const { loadPyodide } = await import(pyodideDir + "/pyodide.mjs");
const pyodide = await loadPyodide({ indexURL: pyodideDir + "/" });
pyodide.FS.writeFile("/tmp/source.zip", new Uint8Array(readFileSync(source)));
pyodide.runPython(`
import importlib.util, zipfile
from importlib._bootstrap_external import _code_to_hash_pyc

with zipfile.ZipFile("/tmp/source.zip") as source, zipfile.ZipFile("/tmp/target.zip", "w") as target:
    for member in source.infolist():
        data = source.read(member)
        name = member.filename
        if name.endswith(".py"):
            code = compile(data, name, "exec", dont_inherit=True)
            data = bytes(_code_to_hash_pyc(code, importlib.util.source_hash(data), checked=False))
            name += "c"
        info = zipfile.ZipInfo(name, (2020, 1, 1, 0, 0, 0))
        info.compress_type = zipfile.ZIP_DEFLATED if not name.endswith("/") else zipfile.ZIP_STORED
        target.writestr(info, data)
`);
writeFileSync(target, pyodide.FS.readFile("/tmp/target.zip"));
"""
ENGINE_ARCHIVE = "sipdiag.zip"
# The scan kernel, shipped beside the engine: the worker instantiates it (py/sipdiag/capture/kernel/).
KERNEL_DIR = ROOT / "py" / "sipdiag" / "capture" / "kernel"
KERNEL_SOURCE, KERNEL_WASM = KERNEL_DIR / "scan.c", KERNEL_DIR / "scan.wasm"
KERNEL_FILE = "scan.wasm"
# Debian's clang + lld. -ffp-contract=off: no fused multiply-add, so the kernel's doubles are
# Python's, operation by operation. tests/test_kernel.py rebuilds it and compares the bytes.
KERNEL_FLAGS = ["--target=wasm32-unknown-unknown", "-O3", "-nostdlib", "-fno-builtin", "-ffp-contract=off",
                "-Wall", "-Wextra", "-Werror", "-Wl,--no-entry", "-Wl,--strip-all"]
# Fixed timestamp so the engine archive (and the single file) are reproducible.
ZIP_EPOCH = (2020, 1, 1, 0, 0, 0)
SERVE_PORT = 8000
# clang and lld rebuild the scan kernel (the test that the committed .wasm is its source's)
# and build its libFuzzer harness; libclang-rt-14-dev holds libFuzzer and the sanitizers.
APT_PACKAGES = {"chromium": "/usr/bin/chromium", "tshark": "/usr/bin/tshark", "clang": "/usr/bin/clang",
                "lld": "/usr/bin/wasm-ld",
                "libclang-rt-14-dev": "/usr/lib/llvm-14/lib/clang/14.0.6/lib/linux/libclang_rt.fuzzer-x86_64.a"}

# The marked parts of index.html that the single file replaces (build fails if they move).
STYLESHEET_LINK = re.compile(r'<link rel="stylesheet" href="(static/css/[\w.-]+\.css)">')
ICON_TAG = '<link rel="icon" href="static/icons/sipdiag.svg" type="image/svg+xml">'
APP_SCRIPT_TAG = '<script type="module" src="static/js/app.js"></script>'
CSP_PATTERN = re.compile(r'<meta http-equiv="Content-Security-Policy" content="[^"]*">')
# The single file's inline script: turns the embedded modules into blob: URLs and starts app.js.
BOOTSTRAP = ROOT / "static" / "js" / "embedded-boot.js"
IMPORT_PATTERN = re.compile(r"""(?:\bfrom\s*|\bimport\s*)["'](\.{1,2}/[^"']+)["']""")


def run(command: list[str], **kwargs) -> None:
    print("+", " ".join(command), flush=True)
    subprocess.run(command, check=True, cwd=ROOT, **kwargs)


def ensure_node_modules() -> None:
    """package.json's packages at their pinned versions: pyodide for the page,
    the devDependencies (axe-core) for the browser tests only, never copied into dist/."""
    package = json.loads((ROOT / "package.json").read_text())
    pinned = {**package.get("dependencies", {}), **package.get("devDependencies", {})}

    def installed(name: str) -> str | None:
        manifest = ROOT / "node_modules" / name / "package.json"
        return json.loads(manifest.read_text()).get("version") if manifest.exists() else None

    if all(installed(name) == version for name, version in pinned.items()):
        return
    run(["npm", "ci" if (ROOT / "package-lock.json").exists() else "install", "--no-audit", "--no-fund"])


def engine_archive() -> bytes:
    """py/sipdiag as a zip whose top level is the package folder (unpacked into site-packages)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted((ROOT / "py" / "sipdiag").rglob("*.py")):
            info = zipfile.ZipInfo(path.relative_to(ROOT / "py").as_posix(), ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
    return out.getvalue()


def build(target: Path = DIST) -> Path:
    ensure_node_modules()
    if target.exists():
        shutil.rmtree(target)
    # The single file's bootstrap is inlined into sipdiag.html; the folder site never loads it.
    shutil.copytree(ROOT / "static", target / "static", ignore=shutil.ignore_patterns("*~", ".*", BOOTSTRAP.name))
    shutil.copy2(ROOT / "index.html", target / "index.html")
    (target / "pyodide").mkdir()
    for name in PYODIDE_FILES:
        if name != STDLIB:
            shutil.copy2(PYODIDE_DIR / name, target / "pyodide" / name)
    stdlib = compiled_stdlib()
    (target / "pyodide" / STDLIB).write_bytes(stdlib)
    (target / "py").mkdir()
    engine = engine_archive()
    (target / "py" / ENGINE_ARCHIVE).write_bytes(engine)
    shutil.copy2(KERNEL_WASM, target / "py" / KERNEL_FILE)
    (target / "sipdiag.html").write_text(single_file(engine, stdlib), encoding="utf-8")
    print(f"build: wrote {target} ({tree_size(target) / 1e6:.1f} MB, "
          f"sipdiag.html {(target / 'sipdiag.html').stat().st_size / 1e6:.1f} MB)")
    return target


def compiled_stdlib() -> bytes:
    """Pyodide's python_stdlib.zip with every module compiled (COMPILE_STDLIB)."""
    with tempfile.TemporaryDirectory() as scratch:
        target = Path(scratch) / STDLIB
        subprocess.run(["node", "--input-type=module", "-e", COMPILE_STDLIB, str(PYODIDE_DIR),
                        str(PYODIDE_DIR / STDLIB), str(target)], check=True, cwd=ROOT)
        return target.read_bytes()


def build_kernel(out: Path = KERNEL_WASM) -> Path:
    """scan.c -> scan.wasm (`python3 build.py kernel` after changing scan.c; commit both)."""
    run(["clang", *KERNEL_FLAGS, "-o", str(out), str(KERNEL_SOURCE)])
    return out


def tree_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def packed(data: bytes) -> str:
    # mtime=0 keeps the output reproducible; the page inflates with DecompressionStream.
    return base64.b64encode(gzip.compress(data, compresslevel=9, mtime=0)).decode("ascii")


def js_modules() -> list[dict]:
    """static/js modules in dependency order, each with its relative imports resolved to site paths.

    The single file turns each module into a blob: URL, so a module's imports
    must be rewritten to its dependencies' blob URLs, which exist only at run
    time: the page does the rewrite with this table.
    """
    modules: dict[str, dict] = {}
    for path in sorted((ROOT / "static" / "js").rglob("*.js")):
        if path == BOOTSTRAP:
            continue
        site_path = path.relative_to(ROOT).as_posix()
        source = path.read_text(encoding="utf-8")
        imports = {}
        for specifier in IMPORT_PATTERN.findall(source):
            target = (path.parent / specifier).resolve().relative_to(ROOT).as_posix()
            imports[specifier] = target
        modules[site_path] = {"path": site_path, "source": source, "imports": imports}
    ordered: list[dict] = []
    visiting: set[str] = set()

    def visit(site_path: str) -> None:
        if any(m["path"] == site_path for m in ordered):
            return
        if site_path in visiting:
            raise SystemExit(f"build: import cycle through {site_path}")
        if site_path not in modules:
            raise SystemExit(f"build: a module imports {site_path}, which does not exist")
        visiting.add(site_path)
        for target in modules[site_path]["imports"].values():
            visit(target)
        ordered.append(modules[site_path])

    for site_path in modules:
        visit(site_path)
    return ordered


def csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode() + "'"


def single_file(engine: bytes, stdlib: bytes) -> str:
    """dist/sipdiag.html: the whole site in one file that works from file://."""
    html = (ROOT / "index.html").read_text(encoding="utf-8")
    icon = (ROOT / "static" / "icons" / "sipdiag.svg").read_bytes()
    assets = {f"pyodide/{name}": packed(stdlib if name == STDLIB else (PYODIDE_DIR / name).read_bytes())
              for name in PYODIDE_FILES}
    assets[f"py/{ENGINE_ARCHIVE}"] = packed(engine)
    assets[f"py/{KERNEL_FILE}"] = packed(KERNEL_WASM.read_bytes())
    sample = ROOT / "static" / "sample.pcap"
    if sample.exists():
        assets["static/sample.pcap"] = packed(sample.read_bytes())
    embedded = {"modules": js_modules(), "assets": assets}
    # "</" cannot appear inside the JSON script element, or the HTML parser would end it early.
    payload = json.dumps(embedded, separators=(",", ":")).replace("</", "<\\/")
    bootstrap = BOOTSTRAP.read_text(encoding="utf-8")
    # Each stylesheet link becomes an inline <style>, allowed by its hash.
    def style_text(href: str) -> str:
        return "\n" + (ROOT / href).read_text(encoding="utf-8")

    styles = [style_text(href) for href in STYLESHEET_LINK.findall(html)]
    html = STYLESHEET_LINK.sub(lambda link: f"<style>{style_text(link.group(1))}</style>", html)
    csp = ("default-src 'none'; "
           f"script-src {csp_hash(bootstrap)} blob: 'wasm-unsafe-eval'; "
           "worker-src blob:; "
           f"style-src {' '.join(csp_hash(style) for style in styles)}; "
           "img-src data: blob:; connect-src 'none'; "
           "base-uri 'none'; form-action 'none'; object-src 'none'")
    replacements = {
        ICON_TAG: '<link rel="icon" type="image/svg+xml" href="data:image/svg+xml;base64,'
                  + base64.b64encode(icon).decode() + '">',
        APP_SCRIPT_TAG: '<script type="application/json" id="sipdiag-embedded">' + payload + "</script>\n"
                        + f'<script type="module">{bootstrap}</script>',
    }
    for tag, replacement in replacements.items():
        if html.count(tag) != 1:
            raise SystemExit(f"build: index.html must contain exactly one {tag}")
        html = html.replace(tag, replacement)
    html, count = CSP_PATTERN.subn(f'<meta http-equiv="Content-Security-Policy" content="{csp}">', html)
    if count != 1:
        raise SystemExit("build: index.html must contain one Content-Security-Policy meta element")
    return html


class SiteHandler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".mjs": "text/javascript",
        ".js": "text/javascript",
        ".wasm": "application/wasm",
        ".json": "application/json",
        ".zip": "application/zip",
        ".pcap": "application/vnd.tcpdump.pcap",
        ".svg": "image/svg+xml",
    }
    quiet = False

    def end_headers(self):
        # Revalidate every file on every load (Last-Modified; an unchanged file is a 304):
        # without it Chromium keeps files fresh by heuristic, and a page loaded after a
        # rebuild could mix an old worker.js with the new engine.
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        if not self.quiet:
            super().log_message(format, *args)


def site_server(directory: Path, port: int, quiet: bool = False) -> http.server.ThreadingHTTPServer:
    """An HTTP server for a built site on 127.0.0.1 (port 0 picks a free one); the tests use it too."""
    handler = functools.partial(type("Handler", (SiteHandler,), {"quiet": quiet}), directory=str(directory))
    return http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)


def serve(port: int = SERVE_PORT) -> None:
    server = site_server(DIST, port)
    print(f"sipdiag: serving {DIST} at http://127.0.0.1:{server.server_port}/  (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


def install_test_needs() -> None:
    missing = [name for name, path in APT_PACKAGES.items() if not Path(path).exists()]
    if missing:
        if os.geteuid() != 0:
            raise SystemExit(f"build: tests need Debian packages {' '.join(missing)}; install them as root")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        run(["apt-get", "update"], env=env)
        run(["apt-get", "install", "-y", "--no-install-recommends", *missing], env=env)
    # The engine's dependencies (wasmtime runs the scan kernel) and the test extras of
    # pyproject.toml, installed directly (no package build needed). The browser comes
    # from Debian: the playwright package only drives it (no `playwright install`).
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    run([sys.executable, "-m", "pip", "install", "--quiet", *project["dependencies"],
         *project["optional-dependencies"]["test"]])


def test(pytest_args: list[str]) -> int:
    install_test_needs()
    build()
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "tests", *pytest_args], cwd=ROOT).returncode


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "build"
    if command == "build":
        build()
    elif command == "serve":
        build()
        serve()
    elif command == "test":
        return test(argv[1:])
    elif command == "kernel":
        build_kernel()
    else:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
