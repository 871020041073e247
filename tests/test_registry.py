import pytest

import bench.plugins  # noqa: F401
from bench.registry import PLUGINS, Registry, UnknownNameError, _class_summary


def test_unknown_name_lists_closest_matches():
    with pytest.raises(UnknownNameError) as err:
        PLUGINS.entry("pdg")
    message = str(err.value)
    assert "unknown plugin 'pdg'" in message and "pgd" in message and "\n" not in message


def test_register_and_create_with_metadata():
    reg = Registry("things")

    @reg.register("double", description="twice")
    def double(value: int) -> int:
        return 2 * value

    assert reg.create("double", value=4) == 8
    assert reg.entry("double").meta["description"] == "twice"
    assert reg.names("dou*") == ["double"]


def test_entry_points_group_registers_third_party_entries(monkeypatch):
    from importlib.metadata import EntryPoint

    import bench.registry as registry_module

    ep = EntryPoint(name="third_party", value="fractions:Fraction", group="ribench.things")
    monkeypatch.setattr(registry_module, "entry_points", lambda group: [ep] if group == "ribench.things" else [])
    reg = Registry("things")
    assert reg.create("third_party", numerator=6, denominator=4) == 1.5
    assert "third_party" in reg.names()


def _from_bench(factory) -> bool:
    """Registered by the package itself (tests register their own plugins and models too)."""
    factory = getattr(factory, "func", factory)  # functools.partial
    return (getattr(factory, "__module__", None) or "").split(".")[0] == "bench"


def test_declarations_match_what_the_modules_register():
    """Each package's __init__ declares its entries (listing imports nothing); the modules must agree with it."""
    import bench.data
    import bench.executors
    import bench.methods
    import bench.models
    import bench.plugins
    from bench.registry import ARCHS, DATASETS, EXECUTORS, METHODS

    tables = {
        PLUGINS: {  # what `bench list plugins` shows before any plugin module is imported
            name: {"description": _class_summary(f"bench.plugins.{module}", name)}
            for name, module in bench.plugins._PLUGINS.items()
        },
        DATASETS: {name: {"num_classes": c, "input_size": s} for name, (_, c, s, _) in bench.data._DATASETS.items()},
        ARCHS: {
            name: {"input_size": s, "normalization": n, "description": d}
            for name, (_, s, n, d) in bench.models._ARCHS.items()
        },
        METHODS: {name: {"description": d} for name, (_, d) in bench.methods._METHODS.items()},
        EXECUTORS: {"local": {}, "ray": {}},
    }
    for registry, declared in tables.items():
        ours = [e for e in registry if e.meta.get("source") not in ("test", "zoo")]
        builtin = {e.name for e in ours if _from_bench(registry.entry(e.name).factory)}
        assert builtin == set(declared), registry.kind
        for name, meta in declared.items():
            registered = registry.entry(name)
            assert not registered.declared_only and callable(registered.factory)
            assert {k: registered.meta.get(k) for k in meta} == meta, f"{registry.kind} {name}"
    assert PLUGINS.entry("pgd").factory.name == "pgd"


def test_declared_function_target_binds_its_arguments():
    reg = Registry("things")
    reg.declare("half", "fractions:Fraction", 1, description="built on first use")
    assert reg.peek("half").declared_only and reg.peek("half").meta["description"] == "built on first use"
    assert reg.create("half", denominator=2) == 0.5
    assert not reg.peek("half").declared_only


def test_a_module_declared_for_a_name_it_does_not_register_is_named():
    reg = Registry("things")
    reg.declare("ghost", "fractions")
    with pytest.raises(RuntimeError, match="fractions was declared to register things 'ghost'"):
        reg.entry("ghost")


def _import_graph() -> dict[str, set[str]]:
    """bench module -> the bench modules it imports anywhere in its body (function-level imports included)."""
    import ast
    from pathlib import Path

    root = Path(bench.plugins.__file__).parents[1]
    modules = {}
    for path in root.rglob("*.py"):
        parts = path.relative_to(root.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph = {}
    for name, path in modules.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                targets |= {
                    f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
                    for a in node.names
                }
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def test_no_import_cycles():
    graph = _import_graph()
    state: dict[str, int] = {}
    cycles = []

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                cycles.append(
                    " -> ".join(path[path.index(target) :] + [module, target])
                    if target in path
                    else f"{module} -> {target}"
                )
            elif target not in state:
                visit(target, [*path, module])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [])
    assert not cycles
