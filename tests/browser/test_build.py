"""build.py's output: exactly the runtime files the page needs, pinned inputs,
reproducible archives, and nothing that points outside the page."""

from __future__ import annotations

import importlib.util
import io
import re
import urllib.error
import urllib.request
import zipfile

from urllib.parse import urlsplit

from pagekit import REPO, open_page

import build

CSP = re.compile(r'http-equiv="Content-Security-Policy" content="([^"]*)"')
# The only URL allowed in our own page files: the SVG namespace name (never fetched).
FOREIGN_URL = re.compile(r"https?://(?!www\.w3\.org/2000/svg)")


def csp_directives(html: str) -> dict[str, str]:
    policy = CSP.search(html).group(1)
    return dict(part.strip().split(" ", 1) for part in policy.split(";") if part.strip())


def test_dist_holds_only_the_runtime_files_the_page_loads(site):
    assert sorted(p.name for p in (site.directory / "pyodide").iterdir()) == sorted(build.PYODIDE_FILES)
    assert sorted(p.name for p in (site.directory / "py").iterdir()) == sorted([build.ENGINE_ARCHIVE, build.KERNEL_FILE])


def test_every_file_shipped_is_used(browser, site):
    """Boot, open the sample and redact it: by then the page has asked for
    every file of the folder site (the single file carries the same files)."""
    booted = open_page(browser, site.base_url)
    try:
        booted.page.click("#sample-button")
        booted.page.locator("#engine-status", has_text="analyzed sample.pcap").wait_for()
        booted.page.evaluate("""async () => {
          const sample = await (await fetch("static/sample.pcap")).blob();
          await window.sipdiag.redact(new File([sample], "sample.pcap"), { key: "k" });
        }""")
    finally:
        booted.page.context.close()
    requested = {urlsplit(url).path.lstrip("/") for url in booted.requests if url.startswith(site.base_url)}
    requested |= {"index.html"} if "" in requested else set()
    shipped = {p.relative_to(site.directory).as_posix() for p in site.directory.rglob("*") if p.is_file()}
    assert shipped - requested == {"sipdiag.html"}


def test_axe_core_is_for_the_tests_only(site):
    """axe-core (a devDependency the accessibility tests evaluate into the page) is never shipped."""
    assert (REPO / "node_modules" / "axe-core" / "axe.min.js").exists()
    shipped = [p for p in site.directory.rglob("*") if p.is_file()]
    assert [p.name for p in shipped if "axe" in p.name.lower()] == []
    assert [p.name for p in shipped if b"axe-core" in p.read_bytes() or b"axe.run" in p.read_bytes()] == []


def test_engine_archive_is_the_package_and_reproducible(site):
    archive = (site.directory / "py" / build.ENGINE_ARCHIVE).read_bytes()
    with zipfile.ZipFile(io.BytesIO(archive)) as packed:
        contents = {name: packed.read(name) for name in packed.namelist()}
    sources = {p.relative_to(REPO / "py").as_posix(): p.read_bytes() for p in (REPO / "py" / "sipdiag").rglob("*.py")}
    assert contents == sources
    assert build.engine_archive() == archive


def test_single_file_is_reproducible(site):
    engine = (site.directory / "py" / build.ENGINE_ARCHIVE).read_bytes()
    stdlib = build.compiled_stdlib()
    assert stdlib == (site.directory / "pyodide" / build.STDLIB).read_bytes()
    assert build.single_file(engine, stdlib) == (site.directory / "sipdiag.html").read_text()


def test_standard_library_is_pyodides_compiled(site):
    """Every module of Pyodide's python_stdlib.zip, as a sourceless unchecked-hash .pyc
    (PEP 552 flags 0b01) in the same place; every other member unchanged."""
    with zipfile.ZipFile(build.PYODIDE_DIR / build.STDLIB) as source:
        expected = {(m.filename + "c" if m.filename.endswith(".py") else m.filename): source.read(m)
                    for m in source.infolist()}
    with zipfile.ZipFile(site.directory / "pyodide" / build.STDLIB) as compiled:
        members = {name: compiled.read(name) for name in compiled.namelist()}
    assert list(members) == list(expected)
    pycs = {name: data for name, data in members.items() if name.endswith(".pyc")}
    assert len(pycs) > 500
    magics = {data[:4] for data in pycs.values()}
    # One magic number, Pyodide's Python's: not the one of the Python running the build.
    assert len(magics) == 1 and magics.pop() != importlib.util.MAGIC_NUMBER
    assert {int.from_bytes(data[4:8], "little") for data in pycs.values()} == {0b01}
    assert {name: data for name, data in members.items() if name not in pycs} == \
           {name: data for name, data in expected.items() if not name.endswith(".pyc")}


def test_modules_come_after_their_imports():
    order = [module["path"] for module in build.js_modules()]
    for position, module in enumerate(build.js_modules()):
        assert all(order.index(target) < position for target in module["imports"].values())
    assert order.index("static/js/views/summary.js") < order.index("static/js/app.js")


def test_pages_allow_nothing_outside_themselves(site):
    folder = csp_directives((site.directory / "index.html").read_text())
    assert folder["default-src"] == "'self'"
    assert folder["connect-src"] == "'self'"
    single = csp_directives((site.directory / "sipdiag.html").read_text())
    assert single["default-src"] == "'none'"
    assert single["connect-src"] == "'none'"
    for policy in (folder, single):
        assert not any("http" in value or "*" in value or "unsafe-eval" in value.replace("wasm-unsafe-eval", "")
                       for value in policy.values())


def test_our_page_files_name_no_outside_url():
    files = [REPO / "index.html", *(p for p in (REPO / "static").rglob("*") if p.suffix in (".js", ".css", ".html", ".svg"))]
    offenders = [str(p.relative_to(REPO)) for p in files if FOREIGN_URL.search(p.read_text(encoding="utf-8"))]
    assert offenders == []


def test_server_sends_module_and_wasm_types(site):
    for path, content_type in [("pyodide/pyodide.mjs", "text/javascript"), ("pyodide/pyodide.asm.wasm", "application/wasm"),
                               ("static/js/app.js", "text/javascript"), ("index.html", "text/html")]:
        with urllib.request.urlopen(site.base_url + path) as response:
            assert response.headers["Content-Type"].split(";")[0] == content_type, path


def test_server_has_every_load_revalidate_what_it_sent(site):
    with urllib.request.urlopen(site.base_url + "py/sipdiag.zip") as response:
        assert response.headers["Cache-Control"] == "no-cache"
        last_modified = response.headers["Last-Modified"]
    unchanged = urllib.request.Request(site.base_url + "py/sipdiag.zip", headers={"If-Modified-Since": last_modified})
    try:
        urllib.request.urlopen(unchanged)
        status = 200
    except urllib.error.HTTPError as error:
        status = error.code
    assert status == 304


def test_every_stylesheet_is_linked_and_inlined(site):
    index = (REPO / "index.html").read_text()
    single = (site.directory / "sipdiag.html").read_text()
    for css in (REPO / "static" / "css").glob("*.css"):
        assert f'<link rel="stylesheet" href="static/css/{css.name}">' in index
        assert f"<style>\n{css.read_text()}</style>" in single
    assert 'rel="stylesheet"' not in single
