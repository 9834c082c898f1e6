"""The appointments modules import each other without cycles (TYPE_CHECKING imports count)."""

from __future__ import annotations

import grimp

PACKAGE = "services.appointments"


def _cycle(graph: grimp.ImportGraph, modules: set[str]) -> list[str] | None:
    """One import cycle among ``modules`` (a depth-first search), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = 1
        path.append(module)
        for imported in sorted(graph.find_modules_directly_imported_by(module) & modules):
            if state.get(imported) == 1:
                return [*path[path.index(imported) :], imported]
            if imported not in state and (found := visit(imported)):
                return found
        path.pop()
        state[module] = 2
        return None

    for module in sorted(modules):
        if module not in state and (found := visit(module)):
            return found
    return None


def test_no_import_cycles_in_appointments() -> None:
    graph = grimp.build_graph("services")
    modules = {PACKAGE, *graph.find_descendants(PACKAGE)}
    cycle = _cycle(graph, modules)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_domain_imports_no_framework_or_store() -> None:
    graph = grimp.build_graph("services", "shared", include_external_packages=True)
    domain = f"{PACKAGE}.domain"
    for edge in ("fastapi", "starlette", "pymongo", "redis", "shared.problems"):
        chain = graph.find_shortest_chain(importer=domain, imported=edge, as_packages=True)
        assert chain is None, f"the domain reaches {edge}: " + " -> ".join(chain or ())
