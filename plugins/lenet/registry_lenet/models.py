"""LeNet-5: C1/S2 stem, one C3/S4 stage, then the 120-84-classes MLP on the 5x5 map."""

from registry_core import Component, ModelMeta, ModelSpec, StageSpec

META = ModelMeta(
    family="lenet",
    num_classes=10,
    input_size=(1, 32, 32),
    min_input_size=(1, 16, 16),  # two 5x5 convs and 2x2 pools leave 1x1, which the head pools up to 5x5
    mean=(0.5,),
    std=(0.5,),
    crop_pct=1.0,
    description="LeNet-5 with ReLU and max pooling; 61,706 parameters.",
    paper="LeCun et al., Gradient-based learning applied to document recognition, 1998",
)


def lenet5(act: str = "relu") -> ModelSpec:
    return ModelSpec(
        stem=Component("lenet_stem", {"act": act} if act != "relu" else {}),
        stages=(StageSpec("lenet_conv", depth=1, out_channels=16, stride=2, options={"act": act} if act != "relu" else {}),),
        head=Component("mlp", {"hidden": (120, 84), "pool_size": 5, "act": act}),
        meta=META,
    )
