"""eucp is built in layers that import downwards only, and no module imports itself round a cycle.

1. eucp.protocol: the pure protocol; nothing of eucp outside itself, no I/O library.
2. eucp.runtime: settings, Temporal, codec, logs, ledger, registry, tokens, signing, mail.
   eucp.review: the review report from ledger rows (protocol and runtime).
3. workflows (the protocol and the activities' input models) and activities (protocol, runtime,
   review).
4. eucp.service: protocol, runtime, workflows.
5. The interfaces eucp.api, eucp.client, eucp.cli, eucp.console, and beside them eucp.audit,
   eucp.demo. The HTTP client eucp.client needs only the protocol and the API's wire
   models eucp.api.wire, so a platform can install it without the server (fastapi, temporalio).

The graph is read from the source with `ast`, so every import counts: inside functions, under
`if TYPE_CHECKING:` and in `workflow.unsafe.imports_passed_through()` blocks. Lazy imports hide
cycles at import time, not from the design. No servers; the standard library only.

Show how it was checked: `.venv/bin/python -m tests.test_layers` prints the modules and imports
read, every cycle, every layer violation and what importing the light modules loads.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("eucp", "workflows", "activities", "worker.py")
FIRST_PARTY = ("eucp", "workflows", "activities", "worker")

PROTOCOL = "eucp.protocol"
RUNTIME = "eucp.runtime"
REVIEW = "eucp.review"  # the review report, computed from ledger rows: activities write it
SERVICE = "eucp.service"
WIRE = "eucp.api.wire"
CLIENT = "eucp.client"
EXCHANGE = "eucp.exchange"  # installed into a platform's python-threatexchange: the client's
BELOW_INTERFACES = (PROTOCOL, RUNTIME, REVIEW, "workflows", "activities", "worker", SERVICE)
INTERFACES = (
    "eucp.api",
    CLIENT,
    "eucp.cli",
    "eucp.console",
    "eucp.audit",
    "eucp.demo",
)

# Module prefix -> the prefixes its modules may import (first party). A module follows the longest
# prefix that contains it; a package's `__init__` is the package itself. The interfaces are peers:
# among them only the cycle test keeps the order, except the client and the wire models.
LAYERS: dict[str, tuple[str, ...]] = {
    "eucp": (),  # the root package runs before every layer, so it imports nothing; so do strays
    PROTOCOL: (PROTOCOL,),
    RUNTIME: (PROTOCOL, RUNTIME),
    REVIEW: (PROTOCOL, RUNTIME, REVIEW),
    "workflows": (PROTOCOL, "workflows", "activities"),  # the activities' input models
    "activities": (PROTOCOL, RUNTIME, REVIEW, "activities"),
    "worker": (PROTOCOL, RUNTIME, REVIEW, "workflows", "activities"),  # the process that hosts both
    SERVICE: (PROTOCOL, RUNTIME, "workflows", SERVICE),
    **{interface: (*BELOW_INTERFACES, *INTERFACES) for interface in INTERFACES},
    CLIENT: (PROTOCOL, WIRE, CLIENT),
    WIRE: (PROTOCOL, WIRE),
    EXCHANGE: (PROTOCOL, WIRE, CLIENT, EXCHANGE),
}

IO_LIBRARIES = ("temporalio", "fastapi", "httpx", "psycopg", "sqlite3", "click")
SERVER_LIBRARIES = ("fastapi", "temporalio")
# Prefix -> third-party (or standard library) packages its modules may not import at all.
FORBIDDEN: dict[str, tuple[str, ...]] = {
    PROTOCOL: IO_LIBRARIES,
    WIRE: SERVER_LIBRARIES,
    CLIENT: SERVER_LIBRARIES,
    EXCHANGE: SERVER_LIBRARIES,
}


@dataclass(frozen=True)
class Graph:
    """The modules read (name -> file) and what each imports: first-party modules, by the name
    of the module imported (a package counts as its `__init__`), and other top-level packages."""

    files: Mapping[str, Path]
    imports: Mapping[str, frozenset[str]]
    third_party: Mapping[str, frozenset[str]]

    def missing(self) -> list[str]:
        """First-party names imported that no file defines (moved, or not written yet)."""
        named = {target for targets in self.imports.values() for target in targets}
        return sorted(named - set(self.files))


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def module_files(root: Path = ROOT) -> dict[str, Path]:
    """Every .py file of eucp, workflows, activities and worker.py, by module name."""
    files: dict[str, Path] = {}
    for source in SOURCES:
        path = root / source
        found = sorted(path.rglob("*.py")) if path.is_dir() else [path] if path.exists() else []
        files.update((module_name(file, root), file) for file in found)
    return files


def is_first_party(name: str) -> bool:
    return name.split(".")[0] in FIRST_PARTY


def imports_in(tree: ast.AST, module: str, is_package: bool, known: Iterable[str]) -> list[str]:
    """Every module `tree` imports, anywhere in it: `from p import m` names p.m when that is a
    module, else p; relative imports are made absolute."""
    modules = set(known)
    package = module if is_package else module.rpartition(".")[0]
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module or ""
            for alias in node.names:
                found.append(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
    return found


def build_graph(root: Path = ROOT) -> Graph:
    """The import graph of the project's own modules, read with `ast` (nothing is imported)."""
    files = module_files(root)
    imports: dict[str, frozenset[str]] = {}
    third_party: dict[str, frozenset[str]] = {}
    for module, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        names = imports_in(tree, module, path.name == "__init__.py", files)
        imports[module] = frozenset(name for name in names if is_first_party(name))
        third_party[module] = frozenset(
            name.split(".")[0] for name in names if name and not is_first_party(name)
        )
    return Graph(files=files, imports=imports, third_party=third_party)


def strongly_connected(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components, each sorted, largest first."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in graph:
                continue
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component: list[str] = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(components, key=lambda component: (-len(component), component))


def shortest_cycle(graph: Mapping[str, Iterable[str]], start: str, within: set[str]) -> list[str]:
    """The shortest path start -> ... -> start inside one component (breadth first)."""
    came_from: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for target in sorted(graph[node]):
            if target == start:
                path = [node]
                while path[-1] != start:
                    path.append(came_from[path[-1]])
                return [*reversed(path), start]
            if target in within and target not in came_from:
                came_from[target] = node
                queue.append(target)
    raise AssertionError(f"{start} is in no cycle")


def cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Every self-import, then cycles that together pass through every module of every component
    larger than one; each is a path that ends where it starts."""
    found = [[module, module] for module in sorted(graph) if module in graph[module]]
    for component in strongly_connected(graph):
        if len(component) == 1:
            continue
        members = set(component)
        covered: set[str] = set()
        for start in component:
            if start not in covered:
                cycle = shortest_cycle(graph, start, members)
                covered.update(cycle)
                found.append(cycle)
    return found


def layer_of(module: str) -> str:
    """The longest prefix in LAYERS that contains the module."""
    return max(
        (prefix for prefix in LAYERS if module == prefix or module.startswith(f"{prefix}.")),
        key=len,
    )


def within(module: str, prefixes: Iterable[str]) -> bool:
    return any(module == prefix or module.startswith(f"{prefix}.") for prefix in prefixes)


def layer_violations(graph: Graph) -> list[str]:
    """Every import the layer table does not allow, as `importer -> imported`."""
    violations: list[str] = []
    for module in sorted(graph.files):
        layer = layer_of(module)
        for target in sorted(graph.imports[module]):
            if not within(target, LAYERS[layer]):
                violations.append(f"{module} -> {target}")
        for prefix, libraries in FORBIDDEN.items():
            if within(module, [prefix]):
                violations.extend(
                    f"{module} -> {library}"
                    for library in sorted(graph.third_party[module] & set(libraries))
                )
    return violations


def loaded_by(modules: Mapping[str, Iterable[str]]) -> dict[str, str]:
    """For each module, what importing it alone in a fresh interpreter loads of the libraries
    watched, as `module loads a, b`, or why the import failed; empty when it loads none."""
    probes = {
        module: subprocess.Popen(
            [
                sys.executable,
                "-c",
                f"import {module}, json, sys; "
                f"print(json.dumps([m for m in {sorted(watched)!r} if m in sys.modules]))",
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for module, watched in modules.items()
    }
    found: dict[str, str] = {}
    for module, probe in probes.items():
        out, err = probe.communicate(timeout=120)
        if probe.returncode != 0:
            last = err.strip().splitlines()[-1] if err.strip() else f"exit {probe.returncode}"
            found[module] = f"{module} does not import: {last}"
        elif loaded := json.loads(out.strip().splitlines()[-1]):
            found[module] = f"{module} loads {', '.join(loaded)}"
    return found


def light_modules(graph: Graph) -> dict[str, tuple[str, ...]]:
    """The modules that must import without the server or I/O libraries, and which those are:
    the client and the wire models without fastapi and temporalio, every protocol module without
    any I/O library."""
    light: dict[str, tuple[str, ...]] = {CLIENT: SERVER_LIBRARIES}
    for module in sorted(graph.files):
        if within(module, [WIRE]):
            light[module] = SERVER_LIBRARIES
        if within(module, [PROTOCOL]):
            light[module] = IO_LIBRARIES
    return light


def test_no_import_cycles() -> None:
    """A cycle means no layer sits below another: each module of it needs all the others, and
    one of them runs half-imported. Imports inside functions count; laziness only hides it."""
    found = cycles(build_graph().imports)
    assert not found, "import cycles:\n" + "\n".join(" -> ".join(cycle) for cycle in found)


def test_layers_import_downwards_only() -> None:
    """Each module imports only its own layer and the layers below, as LAYERS says, and the
    protocol, the wire models and the client import no server or I/O library, even lazily."""
    violations = layer_violations(build_graph())
    assert not violations, "imports against the layers:\n" + "\n".join(violations)


def test_client_loads_no_server() -> None:
    """A platform installs the HTTP client to talk to the API; it must not drag in the server's
    fastapi and temporalio."""
    light = light_modules(build_graph())
    found = loaded_by({m: libs for m, libs in light.items() if not within(m, [PROTOCOL])})
    assert not found, "\n".join(found.values())


def test_protocol_loads_no_io_library() -> None:
    """The protocol is pure: workflows replay it deterministically, so importing any of its
    modules loads no Temporal, web, HTTP, database or command-line library."""
    light = light_modules(build_graph())
    found = loaded_by({m: libs for m, libs in light.items() if within(m, [PROTOCOL])})
    assert not found, "\n".join(found.values())


def main() -> int:
    """Prints what the tests check, and exits 1 if any of it fails."""
    graph = build_graph()
    edges = sum(len(targets) for targets in graph.imports.values())
    print(f"{len(graph.files)} modules, {edges} first-party imports read from {ROOT}")
    found = cycles(graph.imports)
    print(f"\ncycles ({len(found)}):")
    for component in strongly_connected(graph.imports):
        if len(component) > 1:
            print(f"  component of {len(component)}: {', '.join(component)}")
    for cycle in found:
        print("  " + " -> ".join(cycle))
    violations = layer_violations(graph)
    print(f"\nlayer violations ({len(violations)}):")
    for violation in violations:
        print(f"  {violation}")
    missing = graph.missing()
    print(f"\nimported but not found ({len(missing)}):")
    for name in missing:
        importers = sorted(m for m, targets in graph.imports.items() if name in targets)
        print(f"  {name} (imported by {', '.join(importers)})")
    light = light_modules(graph)
    loaded = loaded_by(light)
    print(f"\nimporting the light modules alone ({len(light)}):")
    for module, libraries in light.items():
        clean = f"{module} loads none of {', '.join(libraries)}"
        print(f"  {loaded.get(module, clean)}")
    return 1 if found or violations or loaded else 0


if __name__ == "__main__":
    sys.exit(main())
