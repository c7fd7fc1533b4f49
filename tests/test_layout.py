"""The engine's layout: no import cycles, and each stage uses only the stages
before it (capture file -> packets -> protocol messages -> analysis -> report,
with redaction beside them).

Imports are read from the source with `ast`, including the ones inside
functions: a cycle hidden in a function body is still a cycle.
"""

from __future__ import annotations

import ast

from locations import REPO

PACKAGE_ROOT = REPO / "py"
# What each part of the engine may import from the others. The top-level
# modules (engine, report, cli, the package itself) sit above the stages.
ALLOWED = {
    "model": set(),
    "protocols": {"model"},
    "capture": {"model", "protocols"},
    "analysis": {"model", "protocols"},
    "redaction": {"model", "protocols", "capture", "engine", "report", "html_report"},
    "engine": {"model", "protocols", "capture", "report"},
    # reads a capture again for one stream's packets (the page's RTP streams tab)
    "rtp_stream": {"model", "protocols", "capture"},
    "report": {"model", "analysis"},
    # The readable views of a finished report: ladders (SVG) and the HTML document.
    "ladder": {"model", "protocols"},
    "html_report": {"ladder"},
    "report_tables": {"model"},
    "report_json": set(),
    "cli": {"capture", "engine", "redaction", "html_report", "report_json"},
    "__init__": {"capture", "engine"},
    "__main__": {"cli"},
}


def module_name(path) -> str:
    parts = list(path.relative_to(PACKAGE_ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def engine_modules() -> dict[str, ast.Module]:
    return {module_name(p): ast.parse(p.read_text(), str(p)) for p in sorted((PACKAGE_ROOT / "sipdiag").rglob("*.py"))}


def imports_of(name: str, tree: ast.Module, known: set[str], is_package: bool) -> set[str]:
    """The engine modules that `name` imports, anywhere in its body."""
    package = name if is_package else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            # `from x import y` imports the module x.y when y is one, else the name y of x
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        found.update(target for target in targets if target in known and target != name)
    return found


def import_graph() -> dict[str, set[str]]:
    trees = engine_modules()
    known = set(trees)
    paths = {module_name(p): p for p in (PACKAGE_ROOT / "sipdiag").rglob("*.py")}
    return {name: imports_of(name, tree, known, paths[name].name == "__init__.py") for name, tree in trees.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def stage(module: str) -> str:
    parts = module.split(".")
    return "__init__" if len(parts) == 1 else parts[1]


def test_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_engine_has_no_import_cycle():
    graph = import_graph()
    assert "sipdiag.analysis.call_findings" in graph  # the walk read the tree
    assert "sipdiag.analysis.calls" in graph["sipdiag.analysis.call_findings"]
    assert cycles(graph) == []


def test_each_stage_imports_only_the_stages_before_it():
    graph = import_graph()
    for module, targets in graph.items():
        for target in targets:
            if stage(target) != stage(module):
                assert stage(target) in ALLOWED[stage(module)], f"{module} imports {target}"


def test_every_module_sits_in_a_stage():
    assert {stage(module) for module in import_graph()} == set(ALLOWED)
