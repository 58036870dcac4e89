"""The registry and plugin loading: provenance, duplicates, overrides, broken plugins,
and discovery of a real (temporary) distribution through its entry point."""


import os
from pathlib import Path

import pytest
import torch
from components import TinyBlock, as_plugin, make_plugin, tiny
from installed_plugins import write_distribution

import registry_core
from registry_core import (
    BrokenPluginError,
    DuplicateNameError,
    PluginWarning,
    UnknownComponentError,
    UnknownModelError,
    hookimpl,
)
from registry_core.plugins import PluginHost
from registry_core.plugins.registry import Entry, Provenance, Registry


def models_plugin(**models):
    @hookimpl
    def register_models(register):
        for name, spec in models.items():
            register(name, spec)

    return as_plugin(register_models=register_models)


def test_entries_carry_provenance(fresh_host):
    record = fresh_host(make_plugin(), "tiny-plugin")
    entry = fresh_host.host.registry.get("block", "tiny_block")
    assert entry.provenance.plugin == "tiny-plugin" and entry.obj is TinyBlock
    assert record.status == "ok" and record.provided["model"] == ["tiny", "tiny_aux", "tiny_mixed"]
    assert record.hooks == ["register_blocks", "register_models", "register_stems"]


@pytest.mark.parametrize("second_first", [False, True])
def test_a_clash_contests_only_that_name_whatever_the_order(fresh_host, second_first):
    plugins = [(models_plugin(alpha=tiny), "first"), (models_plugin(alpha=tiny, beta=tiny), "second")]
    for plugin, name in plugins[::-1] if second_first else plugins:
        with pytest.warns(PluginWarning, match="alpha") if name == plugins[1 - second_first][1] else _quiet():
            fresh_host(plugin, name)
    records = fresh_host.host.records
    assert records["first"].status == records["second"].status == "ok"
    assert records["second"].provided == {"model": ["beta"]} and records["first"].provided == {}
    assert records["first"].contested == records["second"].contested != []
    with pytest.raises(DuplicateNameError, match="first.*second|second.*first") as excinfo:
        registry_core.create("alpha")
    assert "REGISTRY_CORE_PREFER" in str(excinfo.value)
    assert registry_core.list_models() == ["beta"]


class _quiet:
    def __enter__(self):
        import warnings

        self.catch = warnings.catch_warnings()
        self.catch.__enter__()
        warnings.simplefilter("error", PluginWarning)

    def __exit__(self, *exc):
        self.catch.__exit__(*exc)


def test_a_preference_settles_a_contest_and_is_shown(monkeypatch):
    monkeypatch.setenv("REGISTRY_CORE_PREFER", "alpha=second")
    host = PluginHost()
    host.add_plugin(models_plugin(alpha=tiny), "first")
    host.add_plugin(models_plugin(alpha=tiny, beta=tiny), "second")
    assert host.registry.get("model", "alpha").provenance.plugin == "second"
    assert host.records["second"].provided == {"model": ["alpha", "beta"]}
    assert "settled for second" in host.records["first"].contested[0]


def test_a_preference_file_in_the_home_folder_settles_a_contest(tmp_path, monkeypatch):
    home = Path(os.environ["REGISTRY_CORE_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    (home / "prefer.txt").write_text("# which plugin owns contested names\nmodel:alpha = first\n")
    host = PluginHost()
    host.add_plugin(models_plugin(alpha=tiny), "first")
    host.add_plugin(models_plugin(alpha=tiny), "second")
    assert host.registry.get("model", "alpha").provenance.plugin == "first"


def test_registry_duplicate_error_directly():
    registry = Registry()
    registry.add_all([Entry("model", "m", tiny, Provenance("a"))])
    registry.add_all([Entry("model", "m", tiny, Provenance("b"))])
    with pytest.raises(DuplicateNameError, match="a.*b"):
        registry.get("model", "m")
    with pytest.raises(DuplicateNameError, match="twice"):
        registry.add_all([Entry("model", "n", tiny, Provenance("c"))] * 2)


@pytest.mark.parametrize("override_first", [False, True])
def test_explicit_override_wins_in_either_order_and_is_shown(fresh_host, override_first):
    def replacement(width: int = 4):
        return tiny(width=width)

    @hookimpl
    def register_models(register):
        register("alpha", replacement, override=True)

    overriding = as_plugin(register_models=register_models)
    fresh_host(make_plugin(), "components")
    order = [(overriding, "overrider"), (models_plugin(alpha=tiny), "original")]
    for plugin, name in order if override_first else order[::-1]:
        fresh_host(plugin, name)
    entry = fresh_host.host.registry.get("model", "alpha")
    assert entry.obj is replacement and entry.replaces.plugin == "original"
    assert fresh_host.host.records["overrider"].overrides == ["model alpha (from original)"]
    assert registry_core.create("alpha").feature_info[-1]["channels"] == 8


def test_plugin_raising_in_a_hook_is_broken_and_named(fresh_host):
    @hookimpl
    def register_models(register):
        register("half_done", tiny)
        raise RuntimeError("boom")

    with pytest.warns(PluginWarning, match="raiser.*RuntimeError: boom"):
        record = fresh_host(as_plugin(register_models=register_models), "raiser")
    assert record.status == "broken" and "register_models" in record.error
    with pytest.raises(BrokenPluginError, match="raiser.*boom"):
        registry_core.create("half_done")
    assert registry_core.list_models() == []  # nothing half-registered


def test_misspelled_hook_is_reported_with_suggestion(fresh_host):
    @hookimpl
    def register_model(register):
        register("x", tiny)

    with pytest.warns(PluginWarning, match="register_model.*did you mean 'register_models'"):
        record = fresh_host(as_plugin(register_model=register_model), "typo")
    assert record.status == "broken"
    assert "x" not in registry_core.list_models()


def test_bad_registrations_are_broken_plugins(fresh_host):
    @hookimpl
    def register_blocks(register):
        register("not_a_block", torch.nn.Conv2d)

    with pytest.warns(PluginWarning, match="subclass of registry_core.Block"):
        assert fresh_host(as_plugin(register_blocks=register_blocks), "bad").status == "broken"


def test_the_broken_plugin_hint_names_only_plugins_that_could_have_provided_the_name(fresh_host, site, rediscover,
                                                                                     monkeypatch):
    """A model whose builder raised is broken on its own and never blamed for another
    name; a plugin whose block hook raised is suspected for blocks, not for models; a
    plugin that failed to import may have provided anything."""
    @hookimpl
    def register_models(register):
        register("faulty", lambda: {}["typo"])

    @hookimpl
    def register_blocks(register):
        raise RuntimeError("boom")

    fresh_host(make_plugin(), "tiny-components")
    fresh_host(as_plugin(register_models=register_models), "buggy")
    with pytest.warns(PluginWarning):
        fresh_host(as_plugin(register_blocks=register_blocks), "blocks-only")
    with pytest.warns(PluginWarning), pytest.raises(BrokenPluginError, match="faulty.*KeyError"):
        registry_core.create("faulty")
    with pytest.raises(BrokenPluginError, match=r"KeyError: 'typo'; the rest of its plugin, buggy, works"):
        registry_core.create("faulty")
    with pytest.raises(UnknownModelError) as unknown_model:
        registry_core.create("tinny")
    assert "broken" not in str(unknown_model.value) and unknown_model.value.suggestions[0] == "tiny"
    with pytest.raises(UnknownComponentError, match=r"unknown block 'nothing' \(broken plugins that may have provided it: blocks-only\)$"):
        registry_core.get_component("block", "nothing")

    write_distribution(site, "rc-test-unimportable", "rc_test_unimportable", "raise ImportError('no foo')\n", "unimportable")
    monkeypatch.setenv("REGISTRY_CORE_PLUGINS", "rc-test-unimportable")
    with pytest.warns(PluginWarning, match="no foo"):
        rediscover()
    with pytest.raises(UnknownModelError, match=r"provided it: unimportable\)$"):
        registry_core.create("tinny")


def test_unknown_model_suggests_close_matches(fresh_host):
    fresh_host(make_plugin())
    with pytest.raises(UnknownModelError) as excinfo:
        registry_core.create("tinny")
    assert excinfo.value.suggestions[0] == "tiny" and len(excinfo.value.suggestions) <= 3
    assert isinstance(excinfo.value, LookupError)


def test_list_models_pattern_is_sorted_fnmatch(fresh_host):
    fresh_host(make_plugin())
    assert registry_core.list_models("tiny_*") == ["tiny_aux", "tiny_mixed"]
    assert registry_core.list_models() == ["tiny", "tiny_aux", "tiny_mixed"]


def test_trace_writes_hook_calls(capsys):
    host = PluginHost(trace=True)
    host.add_plugin(make_plugin(), "traced")
    err = capsys.readouterr().err
    assert "register_models" in err and "traced" in err


# --- discovery through a real distribution on sys.path --------------------------------

GOOD_PLUGIN = """
    from torch import nn
    from registry_core import Block, hookimpl

    class HalvingBlock(Block):
        def __init__(self, in_channels, out_channels, stride=1):
            super().__init__(in_channels, out_channels, stride)
            self.conv = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1)

        def forward(self, x):
            return self.conv(x).relu()

    @hookimpl
    def register_blocks(register):
        register("halving_block", HalvingBlock)
"""


def test_entry_point_plugin_is_discovered_and_its_block_usable(site, rediscover):
    write_distribution(site, "rc-test-halving", "rc_test_halving", GOOD_PLUGIN, "halving")
    host = rediscover()
    record = host.records["halving"]
    assert (record.status, record.distribution, record.version) == ("ok", "rc-test-halving", "1.2.3")
    assert record.entry_point == "rc_test_halving"
    entry = host.registry.get("block", "halving_block")
    assert entry.provenance.distribution == "rc-test-halving"
    model = registry_core.create("lenet5", block="halving_block")
    assert type(model.stages[0][0]).__name__ == "HalvingBlock"
    x = torch.randn(2, 1, 32, 32)
    y = model(x)
    y.sum().backward()
    assert y.shape == (2, 10) and model.stages[0][0].conv.weight.grad is not None
    names = [p.name for p in registry_core.list_plugins()]
    assert "halving" in names and "lenet" in names


def test_plugin_failing_at_import_is_listed_broken_and_rest_works(site, rediscover):
    write_distribution(site, "rc-test-broken", "rc_test_broken", "raise ImportError('missing dependency foo')\n", "broken")
    with pytest.warns(PluginWarning, match="rc-test-broken.*missing dependency foo"):
        host = rediscover()
    record = host.records["broken"]
    assert record.status == "broken" and "failed to import rc_test_broken" in record.error
    assert "lenet5" in registry_core.list_models()
    with pytest.raises(UnknownModelError, match="broken plugins that may have provided it: broken"):
        registry_core.create("some_model_from_broken")


def test_plugins_env_var_restricts_loading(site, rediscover, monkeypatch):
    write_distribution(site, "rc-test-halving", "rc_test_halving", GOOD_PLUGIN, "halving")
    monkeypatch.setenv("REGISTRY_CORE_PLUGINS", "rc-test-halving")
    host = rediscover()
    assert host.records["halving"].status == "ok"
    assert host.records["lenet"].status == "disabled"
    assert registry_core.list_models() == []


def test_installed_plugins_are_all_healthy():
    """Every plugin installed in this environment loads: none is broken."""
    broken = {p.name: p.error for p in registry_core.list_plugins() if p.status == "broken"}
    assert not broken
