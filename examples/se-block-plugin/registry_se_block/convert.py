"""Weights between timm's ``seresnet50`` and our ``se_resnet50``.

timm's SE-ResNet keeps ResNet's key layout (``conv1``/``bn1``, ``layer1``..``layer4``,
``fc``) and names the SE layers inside a block as we do (``se.fc1``, ``se.fc2``), so
ResNet-50's registered timm converter, a rename of those prefixes, serves as it is.
It is looked up when used: like ``se_resnet50`` itself, it needs ``registry-resnet``.
"""

from registry_core import Converter, get_converter


def _resnet50_from_timm() -> Converter:
    return get_converter("timm", "resnet50")


def timm_to_ours(state):
    return _resnet50_from_timm().to_ours(state)


def ours_to_timm(state):
    return _resnet50_from_timm().from_ours(state)


SE_RESNET50_FROM_TIMM = Converter(
    source="timm", model="se_resnet50", to_ours=timm_to_ours, from_ours=ours_to_timm, source_model="seresnet50"
)
