"""The package's shape: no module imports one that imports it back, directly or round a loop
(lazy imports inside functions count), and a Config needs no Keras."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def import_graph() -> dict[str, set[str]]:
    """module -> the dcgan modules it imports anywhere in its source."""
    modules = {p.stem for p in (ROOT / "dcgan").glob("*.py")}
    graph = {}
    for name in modules:
        found = set()
        for node in ast.walk(ast.parse((ROOT / "dcgan" / f"{name}.py").read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "dcgan":
                parts = node.module.split(".")
                found |= {parts[1]} if len(parts) > 1 else {a.name for a in node.names}
            elif isinstance(node, ast.Import):
                found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("dcgan.")}
        graph[name] = (found & modules) - {name, "__init__"}
    return graph


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
    assert {"config", "models", "training", "cli"} <= set(graph)
    assert cycles(graph) == []


def test_the_cycle_finder_finds_a_planted_circle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_a_config_validates_without_keras():
    code = ("import sys; from dcgan.config import Config; Config.from_preset('dcgan64'); "
            "print('keras' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr


# Where backend code may live: one module per backend, and the modules that are about the
# machine or a backend's own formats by nature (instructions.txt lists them).
BACKEND_HOMES = {"distribute", "hardware", "env", "checkpoint", "settings", "quiet"}
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
    outside = {p.stem: backend_uses(p) for p in (ROOT / "dcgan").glob("*.py")
               if p.stem not in BACKEND_HOMES}
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
