"""torchvision and timm layouts <-> ours for GoogLeNet and Inception v3.

Our modules keep torchvision's names inside each block and head, so every map here
only renames module prefixes. timm's Inception v3 has torchvision's layout without
the auxiliary head (timm builds it with ``aux_logits=False``).
"""

from __future__ import annotations

from functools import partial

from registry_core import Converter, invert_prefixes, rename_prefixes

# torchvision googlenet -> ours. Stage 1 and 4 start with a max-pool block (no weights).
TORCHVISION_GOOGLENET = {
    "conv1.": "stem.conv1.",
    "conv2.": "stem.conv2.",
    "conv3.": "stem.conv3.",
    "inception3a.": "stages.0.0.",
    "inception3b.": "stages.0.1.",
    "inception4a.": "stages.1.1.",
    "inception4b.": "stages.2.0.",
    "inception4c.": "stages.2.1.",
    "inception4d.": "stages.2.2.",
    "inception4e.": "stages.3.0.",
    "inception5a.": "stages.4.1.",
    "inception5b.": "stages.4.2.",
    "aux1.": "aux_heads.0.",
    "aux2.": "aux_heads.1.",
    "fc.": "head.fc.",
}

# timm inception_v3 -> ours (torchvision's layout minus AuxLogits).
TIMM_INCEPTION_V3 = {
    "Conv2d_1a_3x3.": "stem.conv1a.",
    "Conv2d_2a_3x3.": "stem.conv2a.",
    "Conv2d_2b_3x3.": "stem.conv2b.",
    "Conv2d_3b_1x1.": "stem.conv3b.",
    "Conv2d_4a_3x3.": "stem.conv4a.",
    "Mixed_5b.": "stages.0.0.",
    "Mixed_5c.": "stages.0.1.",
    "Mixed_5d.": "stages.0.2.",
    "Mixed_6a.": "stages.1.0.",
    "Mixed_6b.": "stages.1.1.",
    "Mixed_6c.": "stages.1.2.",
    "Mixed_6d.": "stages.1.3.",
    "Mixed_6e.": "stages.1.4.",
    "Mixed_7a.": "stages.2.0.",
    "Mixed_7b.": "stages.2.1.",
    "Mixed_7c.": "stages.2.2.",
    "fc.": "head.fc.",
}

TORCHVISION_INCEPTION_V3 = {**TIMM_INCEPTION_V3, "AuxLogits.": "aux_heads.0."}

# What torchvision's pretrained builders use; our create() then needs the transform on.
TORCHVISION_SOURCE = {"aux_logits": True, "transform_input": True, "init_weights": False}


def _converter(source: str, model: str, prefixes: dict[str, str], **fields) -> Converter:
    return Converter(
        source,
        model,
        to_ours=partial(rename_prefixes, prefixes=prefixes),
        from_ours=partial(rename_prefixes, prefixes=invert_prefixes(prefixes)),
        **fields,
    )


CONVERTERS = (
    _converter("torchvision", "googlenet", TORCHVISION_GOOGLENET, source_kwargs=TORCHVISION_SOURCE, create_kwargs={"transform_input": True}),
    _converter("torchvision", "inception_v3", TORCHVISION_INCEPTION_V3, source_kwargs=TORCHVISION_SOURCE, create_kwargs={"transform_input": True}),
    _converter("timm", "inception_v3", TIMM_INCEPTION_V3, create_kwargs={"aux_logits": False, "drop_rate": 0.0}),
)
