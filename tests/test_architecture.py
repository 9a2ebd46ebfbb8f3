"""The shape of the library: opdiff's import graph follows the layer order of
notes/architecture.md, has no cycle, and no module imports another module's private name.

Every import counts, also one inside a function (a lazy import that dodges a cycle is still a
dependency), and importing ``a.b.c`` also imports the package ``a.b`` (its ``__init__`` runs).
The known violations are listed below with the reason they remain; the test fails when a new one
appears AND when a listed one is gone (so the list only shrinks, and stays true).
"""

from __future__ import annotations

import ast
import collections
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "opdiff"

# Lower layers first; a module may import from its own layer and the layers before it.
LAYERS: list[tuple[str, ...]] = [
    # 0 core: checks, claims, the engine and its checkpoints and meshes
    ("opdiff._checks", "opdiff._compat", "opdiff.claims", "opdiff.parallel", "opdiff.checkpoint",
     "opdiff.train", "opdiff.lbfgs"),
    # 1 data and measurement: spaces, reference operators, datasets, spectra, metrics, images
    ("opdiff.functions", "opdiff.operators", "opdiff.data", "opdiff.spectra", "opdiff.images"),
    # 2 generic networks
    ("opdiff.nets",),
    # 3 topics that use networks: approximation, operator learning
    ("opdiff.approx", "opdiff.operator_learning", "opdiff.deeponet_bounds",
     "opdiff.deeponet_sweep"),
    # 4 diffusion (uses nets, approx's bounds, spectra); metrics (FD, KL estimators) use its
    # Gaussian divergences
    ("opdiff.diffusion", "opdiff.metrics"),
    # 5 leaves
    ("opdiff.plotting",),
]

# (importer, imported): why it is still here. Remove an entry when the import is gone. Empty:
# every layering violation the issue-14 review found is fixed (diffusion models moved out of
# nets/), and the test fails if one comes back.
KNOWN_VIOLATIONS: dict[tuple[str, str], str] = {}
# (importer, imported module, private name). Empty: shared checks are public in _checks.py.
KNOWN_PRIVATE: set[tuple[str, str, str]] = set()


def _modules() -> dict[str, Path]:
    mods = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        mods[name] = path
    return mods


def _graph():
    """Edges importer -> imported (opdiff modules and packages) and private-name imports."""
    mods = _modules()
    edges: dict[str, set[str]] = collections.defaultdict(set)
    private = set()
    for name, path in mods.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    module = ".".join(base + ([node.module] if node.module else []))
                else:
                    module = node.module or ""
                for alias in node.names:
                    full = f"{module}.{alias.name}"
                    if full in mods:
                        targets.append(full)
                    else:
                        targets.append(module)
                        if alias.name.startswith("_") and not alias.name.startswith("__") \
                                and module.startswith("opdiff") and module != name:
                            private.add((name, module, alias.name))
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            for target in targets:
                if not target.startswith("opdiff.") or target == name:
                    continue
                parts = target.split(".")
                for k in range(2, len(parts) + 1):  # the packages on the way run too
                    dep = ".".join(parts[:k])
                    if dep in mods and dep != name and not name.startswith(dep + "."):
                        edges[name].add(dep)
    return mods, edges, private


def _layer(module: str) -> int | None:
    best = None
    for i, prefixes in enumerate(LAYERS):
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and (best is None or
                                                                 len(p) > best[1]):
                best = (i, len(p))
    return None if best is None else best[0]


def test_every_module_has_a_layer():
    mods, _, _ = _graph()
    missing = sorted(m for m in mods if m != "opdiff" and _layer(m) is None)
    assert not missing, f"add these modules to LAYERS in {__file__}: {missing}"


def test_imports_follow_the_layer_order():
    _, edges, _ = _graph()
    found = {(a, b) for a, targets in edges.items() if a != "opdiff"
             for b in targets if _layer(b) is not None and _layer(a) is not None
             and _layer(b) > _layer(a)}
    new = sorted(found - KNOWN_VIOLATIONS.keys())
    gone = sorted(KNOWN_VIOLATIONS.keys() - found)
    assert not new, f"imports against the layer order (notes/architecture.md): {new}"
    assert not gone, f"fixed, so remove from KNOWN_VIOLATIONS: {gone}"


def test_no_import_cycle_beyond_the_known_violations():
    mods, edges, _ = _graph()
    allowed = set(KNOWN_VIOLATIONS)
    graph = {a: {b for b in bs if (a, b) not in allowed} for a, bs in edges.items()}
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(u):
        state[u] = 1
        stack.append(u)
        for v in sorted(graph.get(u, ())):
            if state.get(v) == 1:
                cycles.append(stack[stack.index(v):] + [v])
            elif v not in state:
                visit(v)
        stack.pop()
        state[u] = 2

    for m in sorted(mods):
        if m != "opdiff" and m not in state:
            visit(m)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_no_module_imports_another_modules_private_name():
    _, _, private = _graph()
    new = sorted(private - KNOWN_PRIVATE)
    gone = sorted(KNOWN_PRIVATE - private)
    assert not new, f"private names imported across modules (make them public or move): {new}"
    assert not gone, f"fixed, so remove from KNOWN_PRIVATE: {gone}"


@pytest.mark.parametrize("bad", [("opdiff.train", "opdiff.diffusion")])
def test_the_layer_check_can_fail(bad):
    assert _layer(bad[1]) > _layer(bad[0])
