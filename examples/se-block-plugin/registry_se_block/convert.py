"""Weights between timm's ``seresnet50`` and our ``se_resnet50``.

timm names the stem ``conv1``/``bn1``, the stages ``layer1``..``layer4`` and the
classifier ``fc``; inside a block (``se.fc1``, ``se.fc2`` included) its names equal
ours, so one prefix map converts both ways.
"""

from registry_core import Converter, invert_prefixes, rename_prefixes

TIMM_TO_OURS = {
    "conv1.": "stem.conv.",
    "bn1.": "stem.bn.",
    "layer1.": "stages.0.",
    "layer2.": "stages.1.",
    "layer3.": "stages.2.",
    "layer4.": "stages.3.",
    "fc.": "head.fc.",
}
OURS_TO_TIMM = invert_prefixes(TIMM_TO_OURS)


def timm_to_ours(state):
    return rename_prefixes(state, TIMM_TO_OURS)


def ours_to_timm(state):
    return rename_prefixes(state, OURS_TO_TIMM)


SE_RESNET50_FROM_TIMM = Converter(
    source="timm", model="se_resnet50", to_ours=timm_to_ours, from_ours=ours_to_timm, source_model="seresnet50"
)
