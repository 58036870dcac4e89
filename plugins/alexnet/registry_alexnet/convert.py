"""Converter between torchvision's AlexNet state dict and ours: a pure renaming."""

from functools import partial

from registry_core import Converter, invert_prefixes, rename_prefixes

TORCHVISION_KEYS = {
    "features.0.": "stem.conv.",
    "features.3.": "stages.0.0.conv.",
    "features.6.": "stages.1.0.conv.",
    "features.8.": "stages.1.1.conv.",
    "features.10.": "stages.1.2.conv.",
    "classifier.1.": "head.hidden.0.",
    "classifier.4.": "head.hidden.1.",
    "classifier.6.": "head.fc.",
}

TORCHVISION = Converter(
    "torchvision",
    "alexnet",
    to_ours=partial(rename_prefixes, prefixes=TORCHVISION_KEYS),
    from_ours=partial(rename_prefixes, prefixes=invert_prefixes(TORCHVISION_KEYS)),
)
