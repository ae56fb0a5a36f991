"""The package's layers: no module imports from a higher layer, and no import cycle.

Every import statement of every module under ``src/hcr`` counts, lazy ones inside functions
included (``if TYPE_CHECKING:`` blocks excepted). The table is the one in
docs/contributing.md; keep the two in step.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

#: Layers, lowest first. A module may import from its own layer and the layers below.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("base", ("hcr", "hcr.errors", "hcr.labels", "hcr.charset", "hcr.lexicon", "hcr.ctc", "hcr.metrics", "hcr.cache", "hcr.config", "hcr.texts", "hcr.pretrained")),
    # pixels before data: data sources decode, compose and render images with the pixel pipeline
    ("pixels", ("hcr.frames", "hcr.segment", "hcr.preprocess", "hcr.render", "hcr.typeset", "hcr.compose", "hcr.augment", "hcr.synthetic")),
    ("data", ("hcr.data",)),
    # the contract before the networks: they take the task names and the CTC stride from it
    ("modelfile", ("hcr.modelfile",)),
    ("models", ("hcr.models", "hcr.checkpoint")),
    ("runtime", ("hcr.runtime",)),
    # page analysis runs the printed-or-handwritten classifier; drawings are written atomically
    ("reading", ("hcr.reading", "hcr.annotate", "hcr.predictor", "hcr.reader")),
    ("apps", ("hcr.__main__", "hcr.train", "hcr.amp", "hcr.distributed", "hcr.export", "hcr.report", "hcr.batch", "hcr.cli", "hcr.web")),
]


def layer_of(module: str, layers: list[tuple[str, tuple[str, ...]]] = LAYERS) -> int:
    """Index of the layer holding ``module`` (the longest matching prefix)."""
    best, where = -1, -1
    for i, (_, prefixes) in enumerate(layers):
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and len(p) > best:
                best, where = len(p), i
    if where < 0:
        raise KeyError(f"{module} is in no layer: add it to LAYERS and docs/contributing.md")
    return where


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING")


def imports_of(source: str, module: str, is_package: bool, known: set[str]) -> set[str]:
    """The hcr modules ``module`` imports (resolved to modules in ``known``)."""
    out: set[str] = set()
    package = module if is_package else module.rpartition(".")[0]

    def add(name: str) -> None:
        while name and name not in known:
            name = name.rpartition(".")[0]
        if not name or name == module:
            return
        out.add(name)
        # importing a.b.c runs the packages a and a.b first, unless the importer is inside them
        parent = name.rpartition(".")[0]
        while parent and not (module == parent or module.startswith(parent + ".")):
            out.add(parent)
            parent = parent.rpartition(".")[0]

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for c in child.orelse:
                    visit(c)
                continue
            if isinstance(child, ast.Import):
                for a in child.names:
                    if a.name.split(".")[0] == "hcr":
                        add(a.name)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")
                    base = base[: len(base) - child.level + 1]
                    target = ".".join(base + ([child.module] if child.module else []))
                else:
                    target = child.module or ""
                if target.split(".")[0] == "hcr":
                    for a in child.names:  # ``from . import x`` may name a submodule
                        add(f"{target}.{a.name}" if f"{target}.{a.name}" in known else target)
            visit(child)

    visit(ast.parse(source))
    return out


def package_graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for p in (SRC / "hcr").rglob("*.py")}
    known = set(files)
    return {m: imports_of(p.read_text(encoding="utf-8"), m, p.name == "__init__.py", known) for m, p in files.items()}


def layer_violations(graph: dict[str, set[str]], layers: list[tuple[str, tuple[str, ...]]] = LAYERS) -> list[str]:
    """``a (layer) imports b (higher layer)`` for each import from a higher layer."""
    out = []
    for m, deps in sorted(graph.items()):
        for d in sorted(deps):
            if layer_of(d, layers) > layer_of(m, layers):
                out.append(f"{m} ({layers[layer_of(m, layers)][0]}) imports {d} ({layers[layer_of(d, layers)][0]})")
    return out


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle (``[a, b, ..., a]``), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def dfs(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for d in sorted(graph.get(m, ())):
            if state.get(d) == 1:
                return stack[stack.index(d):] + [d]
            if d not in state:
                found = dfs(d)
                if found:
                    return found
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state:
            found = dfs(m)
            if found:
                return found
    return None


def test_every_module_has_a_layer() -> None:
    for m in package_graph():
        layer_of(m)


def test_no_module_imports_from_a_higher_layer() -> None:
    assert layer_violations(package_graph()) == []


def test_no_import_cycle() -> None:
    cycle = find_cycle(package_graph())
    assert cycle is None, " -> ".join(cycle or [])


def test_the_checks_catch_a_violation_and_a_cycle() -> None:
    layers = [("low", ("hcr.a",)), ("high", ("hcr.b", "hcr.c"))]
    source = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import c\ndef f():\n    from .b import x\n"
    known = {"hcr", "hcr.a", "hcr.b", "hcr.c"}
    deps = imports_of(source, "hcr.a", False, known)
    assert deps == {"hcr.b"}  # the lazy import counts, the TYPE_CHECKING one does not
    assert layer_violations({"hcr.a": deps, "hcr.b": set()}, layers) == ["hcr.a (low) imports hcr.b (high)"]
    assert find_cycle({"hcr.b": {"hcr.c"}, "hcr.c": {"hcr.b"}}) == ["hcr.b", "hcr.c", "hcr.b"]
    assert find_cycle({"hcr.b": {"hcr.c"}, "hcr.c": set()}) is None
    # a submodule import runs its package: hcr.a -> hcr.p.x means hcr.a -> hcr.p too
    assert imports_of("from .p.x import y\n", "hcr.a", False, known | {"hcr.p", "hcr.p.x"}) == {"hcr.p.x", "hcr.p"}
    assert imports_of("from .x import y\n", "hcr.p.z", False, known | {"hcr.p", "hcr.p.x", "hcr.p.z"}) == {"hcr.p.x"}
    with pytest.raises(KeyError):
        layer_of("hcr.nowhere", layers)


def test_the_model_file_contract_and_the_networks_import_no_runtime_or_opencv() -> None:
    code = ("import sys, hcr.modelfile; bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'cv2', 'onnxruntime', 'tensorflow')); "
            "import hcr.models; bad += sorted(m for m in sys.modules if m.split('.')[0] in ('cv2', 'onnxruntime', 'tensorflow')); print(sorted(set(bad)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"
