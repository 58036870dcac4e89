"""Weight converters between torchvision's / timm's ResNet layout and ours.

Both libraries name the stem ``conv1``/``bn1``, the stages ``layer1``..``layer4`` and
the classifier ``fc``; inside a block their names equal ours, so one prefix map serves
every variant in both directions.
"""

from __future__ import annotations

from registry_core import Converter, invert_prefixes, rename_prefixes

from .models import IMAGENET_MODELS

TORCHVISION_TO_OURS = {
    "conv1.": "stem.conv.",
    "bn1.": "stem.bn.",
    "layer1.": "stages.0.",
    "layer2.": "stages.1.",
    "layer3.": "stages.2.",
    "layer4.": "stages.3.",
    "fc.": "head.fc.",
}
OURS_TO_TORCHVISION = invert_prefixes(TORCHVISION_TO_OURS)

SOURCES = ("torchvision", "timm")
"""timm's ``resnet*``, ``resnext*`` and ``wide_resnet*`` models use torchvision's keys."""


def torchvision_to_ours(state):
    return rename_prefixes(state, TORCHVISION_TO_OURS)


def ours_to_torchvision(state):
    return rename_prefixes(state, OURS_TO_TORCHVISION)


CONVERTERS = tuple(
    Converter(source=source, model=name, to_ours=torchvision_to_ours, from_ours=ours_to_torchvision)
    for source in SOURCES
    for name in IMAGENET_MODELS
)
