"""Tiny components and a plugin object used by the core's tests."""

from dataclasses import replace

from torch import nn

from registry_core import AuxHeadSpec, Block, BlockSpec, Component, ModelMeta, ModelSpec, StageSpec, Stem, hookimpl


class TinyStem(Stem):
    def __init__(self, in_chans, out_channels=8):
        super().__init__(in_chans, out_channels, reduction=2)
        self.conv = nn.Conv2d(in_chans, out_channels, 3, stride=2, padding=1)

    def forward(self, x):
        return self.conv(x)


class TinyBlock(Block):
    def __init__(self, in_channels, out_channels, stride=1, expand=1):
        super().__init__(in_channels, out_channels, stride)
        self.conv = nn.Conv2d(in_channels, out_channels * expand, 3, stride=stride, padding=1)
        self.proj = nn.Conv2d(out_channels * expand, out_channels, 1)

    def forward(self, x):
        return self.proj(self.conv(x).relu())


class OtherBlock(Block):
    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__(in_channels, out_channels, stride)
        self.conv = nn.Conv2d(in_channels, out_channels, 1, stride=stride)

    def forward(self, x):
        return self.conv(x)


META = ModelMeta(family="tiny", num_classes=4, input_size=(3, 32, 32), min_input_size=(3, 16, 16))


def tiny(width: int = 16, expand: int = 1) -> ModelSpec:
    options = {"expand": expand} if expand != 1 else {}
    return ModelSpec(
        stem=Component("tiny_stem"),
        stages=(
            StageSpec("tiny_block", depth=2, out_channels=width, stride=1, options=options, name="early"),
            StageSpec("tiny_block", depth=1, out_channels=2 * width, stride=2, options=options, name="late"),
        ),
        head=Component("classifier"),
        meta=META,
    )


def tiny_aux() -> ModelSpec:
    spec = tiny()
    return ModelSpec(spec.stem, spec.stages, spec.head, spec.meta, aux_heads=(AuxHeadSpec("classifier", "early", 0.3),))


def tiny_mixed() -> ModelSpec:
    stage = StageSpec("tiny_block", blocks=(BlockSpec(8), BlockSpec(8, stride=2, block="other_block")))
    return ModelSpec(Component("tiny_stem"), (stage,), Component("classifier"), META)


def make_plugin(**extra_models):
    """A plugin object providing the tiny components and models (plus ``extra_models``)."""

    @hookimpl
    def register_stems(register):
        register("tiny_stem", TinyStem)

    @hookimpl
    def register_blocks(register):
        register("tiny_block", TinyBlock)
        register("other_block", OtherBlock)

    @hookimpl
    def register_models(register):
        register("tiny", tiny)
        register("tiny_aux", tiny_aux)
        register("tiny_mixed", tiny_mixed)
        for name, spec in extra_models.items():
            register(name, spec)

    return as_plugin(register_stems=register_stems, register_blocks=register_blocks, register_models=register_models)


class _Plugin:
    pass


def as_plugin(**hooks):
    """A hashable plugin object (pluggy keeps plugins in sets) carrying ``hooks``."""
    plugin = _Plugin()
    for name, fn in hooks.items():
        setattr(plugin, name, fn)
    return plugin


def register_hash(host, tag_name: str, library: str, digest: str) -> None:
    """Register ``digest`` as the upstream hash of ``tag_name``'s ``library`` file (an override, as a test plugin)."""
    tag = host.registry.get("weights", tag_name).obj
    sources = tuple(replace(s, sha256=digest) if s.library == library else s for s in tag.sources)

    class Hashes:
        @hookimpl
        def register_weights(self, register):
            register(replace(tag, sources=sources), override=True)

    assert host.add_plugin(Hashes(), "test-hashes").status == "ok"
