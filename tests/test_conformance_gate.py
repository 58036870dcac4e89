"""The conformance gate passes correct plugins whose blocks have shape rules.

Two families a third party would write, installed as real distributions and written
against the public API only: DenseNet-121 (a dense block whose width must grow by
whole layers, a transition that halves the map, a norm + ReLU neck) and a small
ConvNeXt (a block that keeps its width and resolution, a downsampling that must
halve the map). Their shape-rule blocks declare ``conformance_examples``; the neck
declares none and is checked inside the model that uses it. Before, the gate built
every block at 16 -> 32 channels, stride 1, and failed both plugins.
"""

import pytest
from components import as_plugin
from densenet_plugin import DENSENET
from installed_plugins import write_distribution

import registry_core
from registry_core import hookimpl, testing
from registry_core.cli import main

CONVNEXT = '''
    import torch
    from torch import nn
    from registry_core import BlockSpec, Block, Component, LayerNorm2d, ModelMeta, ModelSpec, StageSpec, Stem, hookimpl

    class PatchStem(Stem):
        conformance_examples = ({"size": 32}, {"in_chans": 1, "out_channels": 8, "size": 16})

        def __init__(self, in_chans, out_channels=16):
            super().__init__(in_chans, out_channels, reduction=4)
            self.conv = nn.Conv2d(in_chans, out_channels, 4, 4)
            self.norm = LayerNorm2d(out_channels, eps=1e-6)

        def forward(self, x):
            return self.norm(self.conv(x))

    class NextBlock(Block):
        """7x7 depthwise, LayerNorm, MLP x4, layer scale, stochastic depth; keeps width and resolution."""
        conformance_examples = ({"in_channels": 16, "out_channels": 16, "size": 8},
                                {"in_channels": 8, "out_channels": 8, "size": 5, "drop_path": 0.5})

        def __init__(self, in_channels, out_channels, stride=1, drop_path=0.0):
            super().__init__(in_channels, out_channels, stride)
            if in_channels != out_channels or stride != 1:
                raise ValueError("a ConvNeXt block keeps its width and resolution")
            self.conv_dw = nn.Conv2d(in_channels, in_channels, 7, padding=3, groups=in_channels)
            self.norm = nn.LayerNorm(in_channels, eps=1e-6)
            self.fc1, self.fc2 = nn.Linear(in_channels, 4 * in_channels), nn.Linear(4 * in_channels, in_channels)
            self.gamma = nn.Parameter(torch.full((in_channels,), 1e-6))
            self.drop_path = drop_path

        def forward(self, x):
            y = self.fc2(nn.functional.gelu(self.fc1(self.norm(self.conv_dw(x).permute(0, 2, 3, 1)))))
            y = (y * self.gamma).permute(0, 3, 1, 2)
            if self.training and self.drop_path > 0:
                keep = 1 - self.drop_path
                y = y * torch.empty([x.shape[0], 1, 1, 1], dtype=x.dtype).bernoulli_(keep) / keep
            return x + y

    class Downsample(Block):
        """LayerNorm and a 2x2/2 convolution between stages: it must halve the map."""
        conformance_examples = ({"in_channels": 16, "out_channels": 32, "stride": 2, "size": 8},)

        def __init__(self, in_channels, out_channels, stride=2):
            super().__init__(in_channels, out_channels, stride)
            if stride != 2:
                raise ValueError("downsampling halves the map: stride 2")
            self.norm = LayerNorm2d(in_channels, eps=1e-6)
            self.conv = nn.Conv2d(in_channels, out_channels, 2, 2)

        def forward(self, x):
            return self.conv(self.norm(x))

    def nanonext(drop_path_rate=0.1):
        depths, dims = (1, 1, 2, 1), (16, 32, 64, 128)
        rates = iter([drop_path_rate * k / (sum(depths) - 1) for k in range(sum(depths))])
        stages = []
        for i, (depth, dim) in enumerate(zip(depths, dims)):
            blocks = [BlockSpec(dim, 2, block="next_down")] if i else []
            blocks += [BlockSpec(dim, options={"drop_path": next(rates)}) for _ in range(depth)]
            stages.append(StageSpec("next_block", blocks=tuple(blocks)))
        head = Component("classifier", {"norm": "layer_norm", "init": "trunc_normal"})
        return ModelSpec(Component("patch_stem"), tuple(stages), head, ModelMeta(family="nanonext", num_classes=10,
                         input_size=(3, 32, 32), min_input_size=(3, 32, 32)))

    @hookimpl
    def register_stems(register):
        register("patch_stem", PatchStem)

    @hookimpl
    def register_blocks(register):
        register("next_block", NextBlock)
        register("next_down", Downsample)

    @hookimpl
    def register_models(register):
        register("nanonext", nanonext)
'''


@pytest.fixture
def installed(site, rediscover, monkeypatch):
    """Install a third-party distribution and load it, alone with the core."""

    def install(dist, module, body, entry):
        write_distribution(site, dist, module, body, entry)
        monkeypatch.setenv("REGISTRY_CORE_PLUGINS", dist)
        return rediscover()

    return install


def checked(capsys, *args):
    code = main(["plugins", "--check", *args])
    out, err = capsys.readouterr()
    return code, dict(line.split(": ", 2)[1:] for line in out.splitlines() if line.count(": ") >= 2), err


def test_a_third_party_densenet_121_passes_the_gate(installed, capsys):
    installed("rc-test-densenet", "rc_test_densenet", DENSENET, "densenet")
    assert registry_core.model_info("densenet121", flops=False)["params"] == 7_978_856  # torchvision's densenet121
    code, outcomes, err = checked(capsys, "rc-test-densenet")
    assert (code, err) == (0, "")
    assert outcomes == {
        "stem dense_stem": "ok (inside model densenet121, 1 instance)",
        "block dense_block": "ok (2 declared examples)",
        "block transition": "ok (1 declared example)",
        "block norm_relu": "ok (inside model densenet121, 1 instance)",
        "model densenet121": "ok",
    }


def test_a_third_party_convnext_passes_the_gate(installed, capsys):
    installed("rc-test-convnext", "rc_test_convnext", CONVNEXT, "nanonext")
    code, outcomes, err = checked(capsys, "rc-test-convnext")
    assert (code, err) == (0, "")
    assert outcomes == {
        "stem patch_stem": "ok (2 declared examples)",
        "block next_block": "ok (2 declared examples)",
        "block next_down": "ok (1 declared example)",
        "model nanonext": "ok",
    }


class StrictTransition(registry_core.Block):
    """Halves the map and refuses any other stride: the kit's default shape cannot build it."""

    def __init__(self, in_channels, out_channels, stride=2):
        super().__init__(in_channels, out_channels, stride)
        if stride != 2:
            raise ValueError("a transition halves the map: stride 2")
        self.pool = registry_core.LayerNorm2d(in_channels)
        self.conv = __import__("torch").nn.Conv2d(in_channels, out_channels, 2, 2)

    def forward(self, x):
        return self.conv(self.pool(x))


class WrongExample(StrictTransition):
    conformance_examples = ({"in_channels": 8, "out_channels": 16, "stride": 2, "size": 8, "widht": 3},)


class NotADict(StrictTransition):
    conformance_examples = ("in_channels=8",)


def test_a_block_with_shape_rules_and_nothing_to_check_it_with_says_what_to_declare(fresh_host):
    @hookimpl
    def register_blocks(register):
        register("strict", StrictTransition)
        register("misspelled", WrongExample)
        register("not_a_dict", NotADict)

    fresh_host(as_plugin(register_blocks=register_blocks), "strict-plugin")
    outcomes = dict(testing.check_plugin("strict-plugin"))
    assert outcomes["block strict"].startswith("FAILED") and "declares conformance_examples" in outcomes["block strict"]
    assert "example" in outcomes["block misspelled"] and "widht" in outcomes["block misspelled"]
    assert "must be a tuple of dicts" in outcomes["block not_a_dict"]
    StrictTransition.conformance_examples = ({"in_channels": 8, "out_channels": 16, "stride": 2, "size": 8},)
    try:
        assert dict(testing.check_plugin("strict-plugin"))["block strict"] == "ok (1 declared example)"
    finally:
        del StrictTransition.conformance_examples


def test_a_block_that_breaks_its_promise_inside_a_model_is_caught(fresh_host):
    """No examples: the block is checked on the inputs its model gives it, and one
    that returns fewer channels than it promises fails there."""
    from components import TinyStem

    class Liar(registry_core.Block):
        def __init__(self, in_channels, out_channels, stride=1):
            super().__init__(in_channels, out_channels, stride)
            self.conv = __import__("torch").nn.Conv2d(in_channels, out_channels, 3, stride, 1)

        def forward(self, x):
            return self.conv(x)[:, :-1] if self.out_channels > self.in_channels else self.conv(x)

    spec = registry_core.ModelSpec(registry_core.Component("tiny_stem"),
                                   (registry_core.StageSpec("liar", 1, 8), registry_core.StageSpec("liar", 1, 16, 2)),
                                   registry_core.Component("classifier"), registry_core.ModelMeta(num_classes=3))

    @hookimpl
    def register_stems(register):
        register("tiny_stem", TinyStem)

    @hookimpl
    def register_blocks(register):
        register("liar", Liar)

    @hookimpl
    def register_models(register):
        register("liar_net", spec)

    fresh_host(as_plugin(register_stems=register_stems, register_blocks=register_blocks, register_models=register_models), "liars")
    with pytest.raises(registry_core.ConformanceError, match="has 15 channels, its out_channels is 16"):
        testing.check_in_model("block", "liar", "liar_net")
    assert testing.models_using(Liar) == ["liar_net"]
