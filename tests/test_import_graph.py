"""The import graph of the project's code: no cycles, and steps meet only at their faces.

A step (``components/<step>/``) imports the shared contracts (``components.common``) and,
when it needs another step, only that step's package (``from components.train import
...``), never one of its modules. The pipeline composes steps through their packages and
their KFP wrappers (``components.<step>.component``). Imports inside functions count:
they run too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from components.images import STEPS

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("components", "pipeline", "infra")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {
        _module_name(path): path
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
    }


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """Project modules ``name`` imports (``from pkg import sub`` counts as ``pkg.sub``)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base
                for alias in node.names
            ]
        else:
            continue
        found.update(t for t in targets if t in MODULES and t != name)
    return found


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _step_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "components" and parts[1] in STEPS else None


def test_the_graph_sees_the_project():
    assert len(MODULES) > 40
    assert "components.common.contracts" in GRAPH["components.train.data"]
    assert "components.train" in GRAPH["components.tune.tune"]


def test_no_import_cycles():
    cycles: list[list[str]] = []
    state: dict[str, str] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = "open"
        for target in sorted(GRAPH[node]):
            if state.get(target) == "open":
                cycles.append([*trail[trail.index(target) :], target])
            elif target not in state:
                visit(target, [*trail, target])
        state[node] = "done"

    for module in sorted(GRAPH):
        if module not in state:
            visit(module, [module])
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_steps_meet_only_at_their_package_faces(module):
    own = _step_of(module)
    allowed_suffixes = {""} if own else {"", ".component"}
    wrong = sorted(
        target
        for target in GRAPH[module]
        if (step := _step_of(target)) is not None
        and step != own
        and target.removeprefix(f"components.{step}") not in allowed_suffixes
    )
    assert not wrong, (
        f"{module} imports another step's modules {wrong}; import the step's package "
        "(its public API) or move the shared piece into components/common/"
    )


def test_the_contracts_import_no_step():
    for module, targets in GRAPH.items():
        if module.startswith("components.common") or module == "components.images":
            assert not {t for t in targets if _step_of(t)}, module
