"""The package's shape: folders that show the flow (core -> data -> models -> outputs ->
evaluation -> training -> apps), no module importing one in a folder above its own, no module
importing one that imports it back (lazy imports inside functions count), and a Config needs
no Keras."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "dcgan"
# Lowest first.  "core" is the package's own top level: config, settings, errors, io, env,
# hardware, distribute, the backend modules; every folder may stand on it.
LEVELS = ["core", "data", "models", "outputs", "evaluation", "training", "editing", "apps"]
FACADE = {"__init__", "__main__"}  # dcgan's public names and `python -m dcgan`: above everything


def module_names() -> dict[str, Path]:
    """'data.sources' -> its file, for every module (a package's __init__ under its own name)."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if parts[-1] == "__init__" and len(parts) > 1:
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def level(module: str) -> int:
    top = module.split(".")[0]
    return LEVELS.index(top) if top in LEVELS else 0


def imports_of(path: Path, modules) -> set[str]:
    """The dcgan modules `path` imports anywhere in its source."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "dcgan":
            base = node.module.removeprefix("dcgan").lstrip(".")
            for alias in node.names:
                sub = f"{base}.{alias.name}".lstrip(".")
                found.add(sub if sub in modules else base)
        elif isinstance(node, ast.Import):
            found |= {a.name.removeprefix("dcgan.") for a in node.names if a.name.startswith("dcgan.")}
    return {m for m in found if m in modules}


def import_graph() -> dict[str, set[str]]:
    """module -> the dcgan modules it imports (the facade left out: it imports everything)."""
    modules = module_names()
    return {name: imports_of(path, modules) - {name} - FACADE
            for name, path in modules.items() if name not in FACADE}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan)."""
    index, low, stack, on_stack, groups = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return groups


def test_no_import_circles():
    graph = import_graph()
    assert {"config", "models.architectures", "training.loop", "apps.cli"} <= set(graph)
    assert cycles({m: {n for n in targets if not n.endswith("__init__")} for m, targets in graph.items()}) == []


def upward_imports(graph: dict[str, set[str]]) -> set[str]:
    return {f"{m} -> {n}" for m, targets in graph.items() for n in targets if level(n) > level(m)}


def test_no_module_imports_one_in_a_folder_above_its_own():
    assert upward_imports(import_graph()) == set()


def test_every_module_sits_in_a_known_folder():
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert folders == set(LEVELS[1:]) | {"backends"}
    assert len(list(PACKAGE.glob("*.py"))) <= 14  # the core stays small; the rest has a folder


def test_the_level_check_finds_a_planted_upward_import():
    graph = import_graph()
    assert "training.loop" in graph["apps.cli"] and graph["data.sources"]  # the graph is real
    planted = dict(graph, **{"data.sources": graph["data.sources"] | {"training.loop"}})
    assert upward_imports(planted) == {"data.sources -> training.loop"}
    assert level("config") == level("backends.jax") == 0


def test_the_cycle_finder_finds_a_planted_circle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_a_config_validates_without_keras():
    code = ("import sys; from dcgan.config import Config; Config.from_preset('dcgan64'); "
            "print('keras' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr


# Where backend code may live: one module per backend, and the modules that are about the
# machine or a backend's own formats by nature (instructions.txt lists them).
BACKEND_HOMES = {"distribute", "hardware", "env", "settings", "quiet"}
BACKEND_LIBRARIES = {"tensorflow", "jax", "torch"}


def backend_uses(path: Path) -> set[str]:
    """What in `path` is backend-specific: imports of TensorFlow/JAX/torch, and comparisons
    of the Keras backend with a backend's name."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names} & BACKEND_LIBRARIES
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found |= {node.module.split(".")[0]} & BACKEND_LIBRARIES
        elif isinstance(node, ast.Compare) and "backend" in ast.unparse(node):
            names = [c.value for c in [node.left, *node.comparators] if isinstance(c, ast.Constant)]
            found |= {f"== {n!r}" for n in names if n in BACKEND_LIBRARIES}
    return found


def test_backend_code_lives_in_dcgan_backends():
    outside = {name: backend_uses(path) for name, path in module_names().items()
               if name not in BACKEND_HOMES and not name.startswith("backends")}
    assert {name: uses for name, uses in outside.items() if uses} == {}
    homes = {p.stem: backend_uses(p) for p in (ROOT / "dcgan" / "backends").glob("*.py")}
    assert homes["tensorflow"] == {"tensorflow"} and homes["jax"] == {"jax"}
    assert homes["torch"] == {"torch"}


def test_every_backend_module_provides_the_same_names():
    import keras  # noqa: F401 - the modules below are read, not imported (one backend runs)

    def public(path):
        tree = ast.parse(path.read_text())
        names = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
        names |= {t.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets
                  if isinstance(t, ast.Name)}
        return {n for n in names if not n.startswith("_")}

    required = {"gradient_step", "penalty_gradients", "apply_gradients", "forward_with_pullback",
                "input_grad", "no_grad", "replicas", "replica_mean", "step_logs",
                "stateless_train_step", "feed", "decode_all"}
    for name in ("tensorflow", "jax", "torch"):
        missing = required - public(ROOT / "dcgan" / "backends" / f"{name}.py")
        assert missing == set(), (name, missing)
