"""AlexNet as torchvision builds it: 64-192-384-256-256 convolutions, adaptive 6x6
pool, and the 4096-4096 MLP with dropout before each hidden layer.

This is the single-tower variant of "One weird trick" (64 filters in the first layer),
not the two-GPU model of the 2012 paper. ``drop_rate`` is the head's dropout (0.5, as
torchvision's ``dropout``).
"""

from registry_core import BlockSpec, Component, ModelMeta, ModelSpec, StageSpec

STAGES = (
    StageSpec("alexnet_conv", out_channels=192, stride=2, options={"kernel_size": 5}),
    StageSpec("alexnet_conv", blocks=(BlockSpec(384), BlockSpec(256), BlockSpec(256, stride=2))),
)

META = ModelMeta(
    family="alexnet",  # 3x224x224 input and ImageNet mean/std: ModelMeta's defaults
    # the last 3x3/2 pool needs a 3x3 map, which takes at least 63x63 pixels
    min_input_size=(3, 63, 63),
    description="AlexNet, torchvision's single-tower variant",
    paper="Krizhevsky, One weird trick for parallelizing convolutional neural networks, 2014 "
    "(after Krizhevsky, Sutskever & Hinton, ImageNet Classification with Deep CNNs, NeurIPS 2012)",
)


def alexnet(drop_rate: float = 0.5) -> ModelSpec:
    """AlexNet; ``drop_rate`` is the dropout before each hidden layer of the head."""
    head = Component("mlp", {"pool_size": 6, "hidden": (4096, 4096), "drop_rate": drop_rate, "dropout_first": True})
    return ModelSpec(stem=Component("alexnet_stem"), stages=STAGES, head=head, meta=META)
