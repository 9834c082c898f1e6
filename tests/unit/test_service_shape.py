"""Every service has the same shape (docs/architecture.md §11) and no import cycle.

import-linter (``make lint``, contracts in pyproject.toml) holds the layers that can be
named in advance; these tests hold what depends on each service's own modules: the
files every service has, ``domain/`` importing nothing of its service outside itself,
and no import cycle inside a service (``TYPE_CHECKING`` imports count: a cycle hidden
from the interpreter is still one a reader has to untangle).
"""

from __future__ import annotations

from pathlib import Path

import grimp
import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
SERVICES = sorted(p.name for p in (ROOT / "services").iterdir() if (p / "__init__.py").exists())
SHAPE = ("app.py", "bootstrap.py", "settings.py", "handlers.py", "store.py", "events.py")
PACKAGES = ("routes", "domain")


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph("services", "shared")


def test_the_services_are_found() -> None:
    assert {"appointments", "notifications", "referrals", "followup", "gateway"} <= set(SERVICES)


@pytest.mark.parametrize("service", SERVICES)
def test_every_service_has_the_same_few_modules(service: str) -> None:
    folder = ROOT / "services" / service
    missing = [name for name in SHAPE if not (folder / name).is_file()]
    missing += [name for name in PACKAGES if not (folder / name / "__init__.py").is_file()]
    assert not missing, f"services/{service} lacks {missing}"


@pytest.mark.parametrize("service", SERVICES)
def test_domain_imports_nothing_of_its_service_outside_domain(
    service: str, graph: grimp.ImportGraph
) -> None:
    package, domain = f"services.{service}", f"services.{service}.domain"
    outside = sorted(
        f"{module} -> {imported}"
        for module in graph.find_descendants(domain) | {domain}
        for imported in graph.find_modules_directly_imported_by(module)
        if imported.startswith(package + ".") and not imported.startswith(domain)
    )
    assert not outside, outside


def cycles_in(graph: grimp.ImportGraph, package: str) -> list[str]:
    """Each import inside ``package`` whose target leads back to the importer."""
    found = []
    for module in sorted(graph.find_descendants(package)):
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            if not imported.startswith(package + ".") or imported == module:
                continue
            back = graph.find_shortest_chain(importer=imported, imported=module)
            if back is not None:
                found.append(" -> ".join((module, *back)))
    return found


@pytest.mark.parametrize("service", SERVICES)
def test_no_import_cycle_inside_a_service(service: str, graph: grimp.ImportGraph) -> None:
    cycles = cycles_in(graph, f"services.{service}")
    assert not cycles, "\n".join(cycles[:20])


def test_a_cycle_is_found_when_there_is_one() -> None:
    """The check above can fail: two modules importing each other are a cycle."""
    changed = grimp.build_graph("services", "shared")
    changed.add_import(importer="services.followup.settings", imported="services.followup.app")
    cycles = cycles_in(changed, "services.followup")
    assert any(c.startswith("services.followup.settings -> services.followup.app") for c in cycles)
