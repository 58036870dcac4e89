"""DenseNet-121 as a third party would write it, against the public API only: a dense
block that grows by whole layers, a transition that halves the map, a norm + ReLU neck.
Kept as source text, so a test can install it as a real distribution
(``installed_plugins.write_distribution``) or run it as a module (``as_module``)."""

import textwrap
import types

DENSENET = '''
    import torch
    from torch import nn
    from registry_core import BlockSpec, Block, Component, ModelMeta, ModelSpec, StageSpec, Stem, hookimpl

    class DenseStem(Stem):
        def __init__(self, in_chans, out_channels=64):
            super().__init__(in_chans, out_channels, reduction=4)
            self.body = nn.Sequential(nn.Conv2d(in_chans, out_channels, 7, 2, 3, bias=False), nn.BatchNorm2d(out_channels),
                                      nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1))

        def forward(self, x):
            return self.body(x)

    class DenseBlock(Block):
        """Layers of BN-ReLU-1x1-BN-ReLU-3x3, each adding ``growth`` channels."""
        conformance_examples = ({"in_channels": 64, "out_channels": 128, "growth": 32, "size": 8},
                                {"in_channels": 8, "out_channels": 20, "growth": 4, "bn_size": 2, "size": 5})

        def __init__(self, in_channels, out_channels, stride=1, growth=32, bn_size=4):
            super().__init__(in_channels, out_channels, stride)
            if stride != 1 or out_channels <= in_channels or (out_channels - in_channels) % growth:
                raise ValueError(f"a dense block grows {in_channels} channels by whole layers of {growth} at stride 1; "
                                 f"got {out_channels} channels, stride {stride}")
            self.layers = nn.ModuleList()
            for i in range((out_channels - in_channels) // growth):
                width = in_channels + i * growth
                self.layers.append(nn.Sequential(
                    nn.BatchNorm2d(width), nn.ReLU(), nn.Conv2d(width, bn_size * growth, 1, bias=False),
                    nn.BatchNorm2d(bn_size * growth), nn.ReLU(), nn.Conv2d(bn_size * growth, growth, 3, 1, 1, bias=False)))

        def forward(self, x):
            for layer in self.layers:
                x = torch.cat([x, layer(x)], 1)
            return x

    class Transition(Block):
        """BN-ReLU-1x1, then 2x2 average pooling: it halves the map, so stride must be 2."""
        conformance_examples = ({"in_channels": 64, "out_channels": 32, "stride": 2, "size": 8},)

        def __init__(self, in_channels, out_channels, stride=2):
            super().__init__(in_channels, out_channels, stride)
            if stride != 2:
                raise ValueError(f"a transition halves the map: stride 2, got {stride}")
            self.body = nn.Sequential(nn.BatchNorm2d(in_channels), nn.ReLU(), nn.Conv2d(in_channels, out_channels, 1, bias=False),
                                      nn.AvgPool2d(2, 2))

        def forward(self, x):
            return self.body(x)

    class NormReLU(Block):
        def __init__(self, in_channels, out_channels, stride=1):
            super().__init__(in_channels, out_channels, stride)
            if in_channels != out_channels or stride != 1:
                raise ValueError("a norm keeps channels and resolution")
            self.norm = nn.BatchNorm2d(out_channels)

        def forward(self, x):
            return self.norm(x).relu()

    def densenet121():
        stages, channels = [], 64
        for i, layers in enumerate((6, 12, 24, 16)):
            channels += layers * 32
            blocks = [BlockSpec(channels, block="dense_block")]
            if i < 3:
                channels //= 2
                blocks.append(BlockSpec(channels, stride=2, block="transition"))
            stages.append(StageSpec("dense_block", blocks=tuple(blocks)))
        meta = ModelMeta(family="densenet", min_input_size=(3, 32, 32))
        return ModelSpec(Component("dense_stem"), tuple(stages), Component("classifier", {"init": "zero_bias"}), meta,
                         neck=BlockSpec(1024, block="norm_relu"))

    @hookimpl
    def register_stems(register):
        register("dense_stem", DenseStem)

    @hookimpl
    def register_blocks(register):
        register("dense_block", DenseBlock)
        register("transition", Transition)
        register("norm_relu", NormReLU)

    @hookimpl
    def register_models(register):
        register("densenet121", densenet121)
'''


def as_module() -> types.ModuleType:
    """The plugin as a module of its own, ready for ``add_plugin``."""
    module = types.ModuleType("densenet_plugin_module")
    exec(textwrap.dedent(DENSENET), module.__dict__)
    return module
