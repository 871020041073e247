import pytest

import bench.plugins  # noqa: F401
from bench.registry import PLUGINS, Registry, UnknownNameError


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
