"""The package's layers import only downward, dialects never name each other, and no module imports itself in a
circle: read from the source with ``ast``, so the drawing in ``bridge/__init__.py`` cannot go stale."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "bridge"
LAYERS = ("core", "config", "engine", "http", "intake", "daemon")  # bottom to top, as bridge/__init__.py draws them
PLUGIN_LAYER = "intake"  # its modules register in its __init__ and are named nowhere else
CORE_FORBIDDEN = ("asyncio", "aiohttp", "aiofiles", "os", "socket", "time")  # the core does no I/O, reads no clock


def modules(root: Path) -> dict[str, Path]:
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def imports(path: Path, known: dict[str, Path]) -> set[str]:
    """Every module of the package that ``path`` imports, at module level or inside functions alike."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:  # ``from bridge.core import values`` imports the module bridge.core.values
                sub = f"{node.module}.{alias.name}"
                names.add(sub if sub in known else node.module)
    return {name for name in names if name in known}


def external_imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else None


def same_dialect(importer: str, target: str) -> bool:
    """A dialect may be a package of its own (``intake/nsca/``): its modules import each other."""
    return importer.split(".")[:3] == target.split(".")[:3]


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module, or a module importing itself (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph.get(node, ()):
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def violations(root: Path) -> list[str]:
    known = modules(root)
    package = root.name
    graph = {name: imports(path, known) - {package} for name, path in known.items()}
    problems: list[str] = []
    for importer, targets in sorted(graph.items()):
        source = layer(importer)
        if importer.count(".") >= 1 and source is None and importer != f"{package}.__main__":
            problems.append(f"{importer} is in no layer: put it in one of {', '.join(LAYERS)}")
        for target in sorted(targets):
            target_layer = layer(target)
            if source is not None and target_layer is not None and \
                    LAYERS.index(target_layer) > LAYERS.index(source):
                problems.append(f"{importer} ({source}) imports {target} ({target_layer}): an upward import")
            plugins = f"{package}.{PLUGIN_LAYER}"
            if target.startswith(plugins + ".") and importer != plugins and not same_dialect(importer, target):
                problems.append(f"{importer} imports the dialect {target} by name: only {plugins} may")
        if source == "core":
            for name in sorted(external_imports(known[importer]) & set(CORE_FORBIDDEN)):
                problems.append(f"{importer} (core) imports {name}: the core does no I/O")
    problems += [f"import cycle: {' -> '.join(component)}" for component in cycles(graph)]
    return problems


def test_the_package_imports_only_downward_without_cycles() -> None:
    assert violations(PACKAGE) == []


def test_every_layer_is_a_package_with_its_purpose_said() -> None:
    for name in LAYERS:
        init = PACKAGE / name / "__init__.py"
        assert init.is_file(), f"bridge/{name}/ needs an __init__.py saying what the layer is for"
        assert "May import" in (ast.get_docstring(ast.parse(init.read_text())) or ""), init


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "pkg"
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for folder in [root, *(p for p in root.rglob("*") if p.is_dir())]:
        (folder / "__init__.py").touch()
    return root


def test_the_check_finds_an_upward_import_a_named_dialect_and_io_in_the_core(tmp_path: Path) -> None:
    root = _tree(tmp_path, {
        "core/values.py": "import os\nfrom pkg.http import app\n",
        "http/app.py": "def f():\n    from pkg.intake.op5 import view\n",
        "intake/op5.py": "view = None\n",
        "intake/nsca/__init__.py": "from pkg.intake.nsca import packets\nfrom pkg.intake import op5\n",
        "intake/nsca/packets.py": "",
    })
    found = violations(root)
    assert "pkg.core.values (core) imports pkg.http.app (http): an upward import" in found
    assert "pkg.http.app (http) imports pkg.intake.op5 (intake): an upward import" in found
    assert "pkg.http.app imports the dialect pkg.intake.op5 by name: only pkg.intake may" in found
    assert "pkg.core.values (core) imports os: the core does no I/O" in found
    assert "pkg.intake.nsca imports the dialect pkg.intake.op5 by name: only pkg.intake may" in found
    assert not [problem for problem in found if "pkg.intake.nsca.packets" in problem]  # within one dialect


def test_the_check_finds_a_cycle_inside_one_layer(tmp_path: Path) -> None:
    root = _tree(tmp_path, {
        "http/keys.py": "from pkg.http.auth import Authenticator\n",
        "http/auth.py": "from pkg.http import keys\n",
        "http/app.py": "from pkg.http.keys import AUTH\n",
    })
    assert violations(root) == ["import cycle: pkg.http.auth -> pkg.http.keys"]
