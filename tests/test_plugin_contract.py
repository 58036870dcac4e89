"""The plugin contract as a third party meets it: name clashes that never evict a
family (in either sort order of real installed distributions), faults that stay with
their plugin, reusable registered parts, the initialisation contract, the neck slot,
``plugins --check`` and the hint for a file whose plugin is missing."""

import sys
import warnings

import densenet_plugin
import pytest
import torch
from components import as_plugin, make_plugin, tiny
from installed_plugins import write_distribution
from torch import nn

import registry_core
from registry_core import (
    BrokenPluginError,
    Component,
    Converter,
    DataConfig,
    DuplicateNameError,
    ModelSpec,
    PluginWarning,
    StageSpec,
    UnknownComponentError,
    UnknownModelError,
    WeightSource,
    WeightTag,
    hookimpl,
    testing,
)
from registry_core.cli import main
from registry_core.plugins import PluginHost

INTRUDER = """
    from torch import nn
    from registry_core import Block, hookimpl, model_spec

    class NotABottleneck(Block):
        def __init__(self, in_channels, out_channels, stride=1, **options):
            super().__init__(in_channels, out_channels, stride)
            self.conv = nn.Conv2d(in_channels, out_channels, 1, stride=stride)

        def forward(self, x):
            return self.conv(x)

    @hookimpl
    def register_blocks(register):
        register("bottleneck", NotABottleneck)

    @hookimpl
    def register_models(register):
        register("resnet50", lambda: model_spec("lenet5"))
        register("intruder_net", lambda: model_spec("lenet5"))
"""

RESNETS = {"resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnext50_32x4d", "resnext101_32x8d",
           "resnext101_64x4d", "wide_resnet50_2", "wide_resnet101_2", "resnet18_cifar", "resnet34_cifar"}


def clash_outcome(site, rediscover, dist):
    """What a user sees with the intruding distribution ``dist`` installed, with its
    name written as INTRUDER so outcomes for different names compare equal."""
    write_distribution(site, dist, "rc_test_intruder", INTRUDER, "intruder")
    with pytest.warns(PluginWarning, match="contested|claimed by"):
        host = rediscover()
    resnet, intruder = host.records["resnet"], host.records["intruder"]
    with pytest.raises(DuplicateNameError) as model_error:
        registry_core.create("resnet50")
    with pytest.raises(DuplicateNameError) as block_error:
        registry_core.create("resnet101")
    registry_core.create("resnet18")  # the basic-block ResNets are untouched
    return {
        "statuses": (resnet.status, intruder.status),
        "resnets": registry_core.list_models("res*") + registry_core.list_models("wide*"),
        "converters": len(registry_core.list_converters("*/*res*")),
        "intruder_models": intruder.provided,
        "contests": {(c.kind, c.name, frozenset(p.distribution.replace(dist, "INTRUDER") for p in c.claimants), c.chosen)
                     for c in host.registry.contests.values()},
        "recorded": (len(resnet.contested), len(intruder.contested)),
        "errors": [all(word in str(e.value) for word in ("registry-resnet", dist, "REGISTRY_CORE_PREFER", "uninstall"))
                   for e in (model_error, block_error)],
    }


def test_a_clash_never_evicts_a_family_whatever_the_names_sort_order(site, rediscover, tmp_path, monkeypatch):
    before = clash_outcome(site, rediscover, "aaa-intruder")  # sorts before registry-resnet
    for leftover in site.iterdir():
        if leftover.is_dir() and leftover.name.startswith("aaa"):
            for f in leftover.iterdir():
                f.unlink()
            leftover.rmdir()
    sys.modules.pop("rc_test_intruder", None)
    after = clash_outcome(site, rediscover, "zzz-intruder")  # sorts after it
    assert before == after
    assert before["statuses"] == ("ok", "ok")
    assert set(before["resnets"]) == RESNETS - {"resnet50"}
    assert before["converters"] == 20
    assert before["intruder_models"] == {"model": ["intruder_net"]}
    assert before["contests"] == {("model", "resnet50", frozenset({"registry-resnet", "INTRUDER"}), None),
                                  ("block", "bottleneck", frozenset({"registry-resnet", "INTRUDER"}), None)}
    assert before["recorded"] == (2, 2) and before["errors"] == [True, True]


def test_a_user_preference_gives_the_names_back(site, rediscover, monkeypatch):
    write_distribution(site, "aaa-intruder", "rc_test_intruder", INTRUDER, "intruder")
    monkeypatch.setenv("REGISTRY_CORE_PREFER", "resnet50=registry-resnet, block:bottleneck=registry-resnet")
    host = rediscover()
    assert registry_core.model_info("resnet50", flops=False)["params"] == 25_557_032
    assert host.registry.get("block", "bottleneck").provenance.distribution == "registry-resnet"
    assert all("settled for registry-resnet" in c for c in host.records["intruder"].contested)
    assert main(["plugins", "--check"]) == 0  # settled names are not problems


def test_plugins_check_exit_codes(fresh_host, capsys):
    fresh_host(make_plugin(), "tiny-components")
    assert main(["plugins", "--check", "tiny-components"]) == 0
    out = capsys.readouterr().out
    assert "model tiny: ok" in out and "block tiny_block: ok" in out

    class Broken(registry_core.Block):
        def __init__(self, in_channels, out_channels, stride=1):
            super().__init__(in_channels, out_channels + 1, stride)  # lies about its width
            self.conv = nn.Conv2d(in_channels, out_channels + 1, 3, stride, 1)

        def forward(self, x):
            return self.conv(x)

    @hookimpl
    def register_blocks(register):
        register("liar", Broken)

    fresh_host(as_plugin(register_blocks=register_blocks), "liars")
    assert main(["plugins", "--check", "liars"]) == 1
    assert "block liar: FAILED" in capsys.readouterr().out

    with pytest.warns(PluginWarning):
        fresh_host(as_plugin(register_blocks=register_blocks), "liars-again")  # contests 'liar'
    assert main(["plugins", "--check"]) == 1
    assert "contested: block 'liar'" in capsys.readouterr().err


RIVAL = """
    from registry_core import hookimpl

    @hookimpl
    def register_models(register):
        register("lenet5", lambda: None)  # never built: the name is contested
"""


def test_info_on_a_contested_name_says_who_claims_it_as_create_does(site, rediscover, monkeypatch, capsys):
    from registry_core.plugins import host

    write_distribution(site, "rc-test-rival", "rc_test_rival", RIVAL, "rival")
    monkeypatch.setenv("REGISTRY_CORE_PLUGINS", "lenet,rc-test-rival")
    monkeypatch.setattr(host, "_default", None)  # no plugins loaded: `info` answers from the index, as in a new process
    with pytest.warns(PluginWarning, match="claimed by"):
        assert main(["info", "lenet5"]) == 2
    err = capsys.readouterr().err
    assert "model 'lenet5' is registered by both rival (rc-test-rival 1.2.3) and lenet" in err
    assert "REGISTRY_CORE_PREFER='lenet5=" in err and "unknown model" not in err
    with pytest.raises(DuplicateNameError, match="registered by both"):
        registry_core.create("lenet5")


def test_plugins_check_reports_a_model_whose_spec_names_a_missing_part(fresh_host, capsys):
    missing = ModelSpec(Component("tiny_stem"), (StageSpec("no_such_block", 1, 8),), Component("classifier"))
    fresh_host(make_plugin(needs_missing=missing), "tiny-components")
    assert main(["plugins", "--check"]) == 1
    out, err = capsys.readouterr()
    assert err.startswith("problem: model needs_missing is unavailable: unknown block 'no_such_block'")
    assert out == "plugins --check: 1 problem(s)\n"


class _Dataset:
    def load(self, root, **options):  # pragma: no cover - never loaded here
        raise NotImplementedError


def test_the_gate_checks_weight_tags_and_names_what_it_skips(fresh_host):
    data = DataConfig(input_size=(3, 32, 32))

    @hookimpl
    def register_converters(register):
        register(Converter("mylib", "tiny", to_ours=dict, from_ours=dict))

    @hookimpl
    def register_weights(register):
        register(WeightTag("tiny", "mylib_demo", data, (WeightSource("mylib", "tiny", "v1"),)))
        register(WeightTag("tiny", "orphan", data, (WeightSource("otherlib", "tiny", "v1"),)))

    @hookimpl
    def register_datasets(register):
        register("nothing_here", _Dataset())

    fresh_host(make_plugin(), "tiny-components")
    fresh_host(as_plugin(register_converters=register_converters, register_weights=register_weights,
                         register_datasets=register_datasets), "tagged")
    assert dict(testing.check_plugin("tagged")) == {
        "converter mylib/tiny": "skipped: mylib is not installed",
        "weights tiny.mylib_demo": "ok",
        "weights tiny.orphan": "FAILED: ConformanceError: no converter otherlib/tiny for its source files",
        "dataset nothing_here": "skipped: no conformance check for datasets",
    }


def test_a_faulty_builder_breaks_only_its_model(fresh_host, capsys):
    def faulty():
        return {}["typo"]

    @hookimpl
    def register_models(register):
        register("faulty", faulty)
        register("fine", tiny)

    fresh_host(make_plugin(), "tiny-components")
    fresh_host(as_plugin(register_models=register_models), "buggy")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # `list` reports the fault once, as the model's unavailable line
        assert main(["list"]) == 0
    captured = capsys.readouterr()
    assert "tiny" in captured.out and captured.err.count("\n") == 1 and "unavailable: faulty: " in captured.err
    assert "KeyError" in captured.err
    with pytest.raises(BrokenPluginError, match="KeyError"):
        registry_core.create("faulty")
    assert main(["info", "faulty"]) == 2
    assert captured.err.count("Traceback") == 0 and "Traceback" not in capsys.readouterr().err
    assert registry_core.create("fine").num_classes == 4
    record = fresh_host.host.records["buggy"]
    assert record.status == "ok" and "KeyError" in record.error and record.provided == {"model": ["fine"]}
    assert main(["plugins", "--check"]) == 1


def test_a_plugin_without_hooks_and_an_unmatched_plugin_filter_warn(site, rediscover, monkeypatch, fresh_host):
    with pytest.warns(PluginWarning, match="implements no hook"):
        fresh_host(as_plugin(), "empty")
    monkeypatch.setenv("REGISTRY_CORE_PLUGINS", "lenet,no-such-plugin")
    with pytest.warns(PluginWarning, match="no-such-plugin"):
        rediscover()
    assert registry_core.list_models() == ["lenet5"]


def test_trace_prints_the_traceback_of_a_failure(capsys):
    @hookimpl
    def register_models(register):
        raise RuntimeError("deep inside")

    with pytest.warns(PluginWarning):
        PluginHost(trace=True).add_plugin(as_plugin(register_models=register_models), "raiser")
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "RuntimeError: deep inside" in err


def test_a_file_whose_plugin_is_missing_says_what_to_install(tmp_path, fresh_host):
    from registry_core.plugins import host

    path = tmp_path / "lenet5.safetensors"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(host, "_default", None)  # the real plugins, to save a lenet5
        registry_core.save(registry_core.create("lenet5"), path)
    for attempt in (lambda: registry_core.load(path), lambda: registry_core.create("lenet5", weights=path)):
        with pytest.raises(UnknownModelError, match="registry-lenet.*pip install registry-lenet"):
            attempt()


def test_registered_parts_can_be_fetched_subclassed_and_registered():
    bottleneck = registry_core.get_component("block", "bottleneck")
    assert bottleneck.__name__ == "BottleneckBlock"
    assert {"basic", "bottleneck"} <= set(registry_core.list_components("block", "b*"))
    assert "resnet50" in registry_core.list_components("model", "resnet*")
    with pytest.raises(UnknownComponentError, match="kind"):
        registry_core.get_component("blocks", "bottleneck")

    class LoudBottleneck(bottleneck):
        def forward(self, x):
            return super().forward(x) * 2

    @hookimpl
    def register_blocks(register):
        register("loud_bottleneck", LoudBottleneck)

    host = registry_core.plugins.default_host()
    record = host.add_plugin(as_plugin(register_blocks=register_blocks), "loud")
    try:
        model = registry_core.create("resnet50", block="loud_bottleneck", num_classes=3).eval()
        assert isinstance(model.stages[0][0], LoudBottleneck) and model(torch.randn(1, 3, 32, 32)).shape == (1, 3)
        assert registry_core.model_info("resnet50", flops=False)["params"] == sum(p.numel() for p in
                                                                                registry_core.create("resnet50").parameters())
    finally:
        registry_core.reload_plugins()
    assert record.status == "ok"


# --- initialisation contract --------------------------------------------------------

class PlainBlock(registry_core.Block):
    """Written from the docs, with no init_weights: the core's default applies."""

    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__(in_channels, out_channels, stride)
        self.conv = nn.Conv2d(in_channels, out_channels, 3, stride, 1)
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x):
        return self.bn(self.conv(x)).relu()


class SelfInitBlock(PlainBlock):
    calls = 0

    def init_weights(self):
        SelfInitBlock.calls += 1
        nn.init.constant_(self.conv.weight, 0.5)


def test_the_core_initialises_every_component_by_the_contract(fresh_host):
    @hookimpl
    def register_blocks(register):
        register("plain", PlainBlock)
        register("self_init", SelfInitBlock)

    fresh_host(make_plugin(), "tiny-components")
    fresh_host(as_plugin(register_blocks=register_blocks), "blocks")
    torch.manual_seed(0)
    model = registry_core.create("tiny", block="plain", width=64)
    conv = model.stages[0][0].conv
    expected = (2.0 / (conv.out_channels * 9)) ** 0.5  # He normal, fan-out, ReLU gain
    assert conv.weight.std().item() == pytest.approx(expected, rel=0.1) and torch.all(conv.bias == 0)
    SelfInitBlock.calls = 0
    model = registry_core.create("tiny", block="self_init")
    assert SelfInitBlock.calls == sum(len(stage) for stage in model.stages)  # once per block built
    assert torch.all(model.stages[1][0].conv.weight == 0.5)
    registry_core.testing.check_block(PlainBlock)
    registry_core.testing.check_block(SelfInitBlock)


def test_the_kit_rejects_an_initialisation_that_is_not_reproducible():
    class Wild(PlainBlock):
        def init_weights(self):
            nn.init.normal_(self.conv.weight, generator=torch.Generator().manual_seed(torch.seed() % 1000))

    with pytest.raises(registry_core.ConformanceError, match="reproducible"):
        registry_core.testing.check_block(Wild)


# --- the neck slot: a DenseNet-121 as a third party would write it ------------------

def test_a_densenet_with_a_neck_has_torchvisions_parameter_count(fresh_host):
    torchvision = pytest.importorskip("torchvision")
    densenet = densenet_plugin.as_module()
    fresh_host(densenet, "dense")
    model = registry_core.create("densenet121").eval()
    theirs = torchvision.models.densenet121(weights=None)
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in theirs.parameters()) == 7_978_856
    assert isinstance(model.neck, densenet.NormReLU) and model.num_features == 1024
    with torch.no_grad():
        assert model(torch.randn(1, 3, 64, 64)).shape == (1, 1000)
        features = registry_core.create("densenet121", features_only=True).eval()(torch.randn(1, 3, 64, 64))
    assert [f.shape[1] for f in features] == [128, 256, 512, 1024]
    assert features[-1].min() >= 0  # the neck's ReLU ran on the last map
    info = registry_core.create("densenet121", features_only=True).feature_info[-1]
    assert (info["module"], info["channels"], info["reduction"]) == ("neck", 1024, 32)


def test_existing_families_have_no_neck_and_keep_their_layout():
    model = registry_core.create("resnet18")
    assert not hasattr(model, "neck") and not any(k.startswith("neck.") for k in model.state_dict())


FAULTY = """
    from registry_core import hookimpl, model_spec

    def faulty():
        return {}["typo"]  # a bug in a third party's builder

    @hookimpl
    def register_models(register):
        register("faulty_net", faulty)
        register("healthy_net", lambda: model_spec("lenet5"))
"""


def test_an_installed_plugin_with_a_faulty_builder_breaks_only_that_model(site, rediscover, capsys):
    write_distribution(site, "rc-test-faulty", "rc_test_faulty", FAULTY, "faulty")
    host = rediscover()
    assert main(["list"]) == 0
    out, err = capsys.readouterr()
    assert "healthy_net" in out and "resnet50" in out and "Traceback" not in err
    assert [line for line in err.splitlines() if "faulty_net" in line] == [
        "unavailable: faulty_net: unknown name 'faulty_net' (its builder raised KeyError: 'typo')"]
    assert main(["info", "faulty_net"]) == 2 and "KeyError" in capsys.readouterr().err
    assert registry_core.create("healthy_net").num_classes == 10
    record = host.records["faulty"]
    assert record.status == "ok" and record.provided == {"model": ["healthy_net"]} and "KeyError" in record.error
    assert main(["plugins", "--check"]) == 1
