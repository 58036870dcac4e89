"""SE-ResNet-50: ResNet-50 (stem, stages, head) with the SE bottleneck in every stage.

The spec is derived from the registered ``resnet50`` when the model is built, so it
stays exactly ResNet-50 plus squeeze-and-excitation and repeats none of its numbers.
"""

from dataclasses import replace

from registry_core import ModelSpec, SpecError, UnknownNameError, model_spec

PAPER = "Hu et al., Squeeze-and-Excitation Networks, CVPR 2018"


def se_resnet50(se_reduction: int = 16) -> ModelSpec:
    try:
        base = model_spec("resnet50")
    except UnknownNameError as exc:
        raise SpecError(
            "se_resnet50 is ResNet-50 with SE blocks and needs the registry-resnet plugin, "
            "which provides resnet50 (pip install registry-resnet)"
        ) from exc
    options = {"se_reduction": se_reduction} if se_reduction != 16 else {}
    stages = tuple(
        replace(stage, block="se_bottleneck", options={**stage.options, **options}) for stage in base.stages
    )
    meta = replace(
        base.meta,
        family="se_resnet",
        description=f"ResNet-50 with squeeze-and-excitation (reduction {se_reduction}) in every bottleneck.",
        paper=PAPER,
    )
    return replace(base, stages=stages, meta=meta)
