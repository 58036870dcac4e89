"""The preprocessing a set of weights expects, as a transform: ``transforms(model)``.

A model's (or a weights file's) ``DataConfig`` decides everything: resize the shorter
side to ``eval_resize`` (``interpolation``, antialiased), centre-crop ``eval_size``,
scale to [0, 1], normalise with ``mean``/``std`` (with timm's ``crop_mode='squash'``,
both sides are resized to ``eval_resize``, the aspect ratio not kept). That is what torchvision's
``weights.transforms()`` and timm's ``create_transform(**resolve_data_config(...))``
do, and for 8-bit images the result equals theirs value for value: PIL images are resized by PIL, as
theirs are, and a ``uint8`` tensor through float and back with rounding, as
torchvision's classification preset does (torchvision v2's native ``uint8`` kernels
round differently). Evaluation uses the test size and crop (``test_input_size``,
``test_crop_pct``) when the weights name one, as timm's ``validate.py`` does by
default; timm's ``create_transform`` does so only with ``use_test_size=True``.

Images come as PIL images or ``C x H x W`` tensors (``uint8`` in 0..255, floating
point in 0..1) and are first given the model's channel count: grey, palette, RGBA,
16-bit and CMYK images all become what the first convolution takes. Alpha is dropped,
as PIL's ``convert`` and every ImageNet loader do. A 16-bit PIL image is scaled to 8 bits
(its top 8 bits), where torchvision's and timm's loaders (PIL's ``convert``) clip every
value above 255, so such an image differs from theirs on purpose. torchvision is imported only when
a transform is made.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from ..errors import DataError, UnknownNameError, WeightsError
from ..model.data_config import DataConfig
from ..training.transforms import default_policy, train_transform
from ..weights.metadata import data_config_of
from ..weights.safetensors_io import read_metadata

SIXTEEN_BIT_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N")  # PIL clips these to 255 on convert("L"); we scale


def transforms(model_or_file: Any, *, train: bool = False) -> Callable[[Any], Tensor]:
    """The transform that turns one image into the model's input tensor.

    ``model_or_file`` is a model (its ``data_config``), a weights file (its header is
    read; nothing is built) or a ``DataConfig``. ``train=True`` gives the augmentation
    the trainer uses at the model's input size with its default policy for that size,
    then the same normalisation; it draws from torch's global generator.
    """
    data = data_config(model_or_file)
    from torchvision.transforms import v2

    channels = data.input_size[0]
    if train:
        size = data.input_size[-1]
        steps: list[Callable] = [ToChannels(channels), v2.PILToTensor(),
                                 train_transform(default_policy(size), size, data.crop_pct, data.interpolation)]
    else:
        resize = ShorterSide(data.eval_resize, data.interpolation, squash=data.crop_mode == "squash")
        steps = [ToChannels(channels), resize, v2.CenterCrop(data.eval_size),
                 v2.PILToTensor()]
    return v2.Compose([*steps, ToFloat(), v2.Normalize(list(data.mean), list(data.std))])


def data_config(model_or_file: Any) -> DataConfig:
    """The ``DataConfig`` of a model, a weights file, a model or tag name
    (``"resnet50.a1_in1k"``: what ``create`` of that name has; an existing file of that
    name wins), or a ``DataConfig`` itself."""
    if isinstance(model_or_file, DataConfig):
        return model_or_file
    if isinstance(model_or_file, str) and _is_name(model_or_file):
        from ..factory.pretrained import named_data_config

        try:
            return named_data_config(model_or_file)
        except UnknownNameError as exc:
            raise WeightsError(f"{model_or_file!r} is neither a file nor a registered model or tag: {exc}") from None
    if isinstance(model_or_file, str | os.PathLike):
        data = data_config_of(read_metadata(model_or_file), model_or_file)
        if data is None:
            raise WeightsError(f"{model_or_file} records no preprocessing (no data_config or input_size metadata)")
        return data
    data = getattr(model_or_file, "data_config", None)
    if not isinstance(data, DataConfig):
        raise TypeError(f"transforms() takes a model, a weights file or a DataConfig, not {type(model_or_file).__name__}")
    return data


def _is_name(text: str) -> bool:
    """A model or tag name rather than a path: no such file, no folder, no ``.safetensors``."""
    return not os.path.exists(text) and "/" not in text and os.sep not in text and not text.endswith(".safetensors")


def resolve_data_config(args: Mapping[str, Any] | None = None, pretrained_cfg: Mapping[str, Any] | None = None,
                        model: Any = None, use_test_size: bool = False) -> dict[str, Any]:
    """timm's ``resolve_data_config``: the dict ``create_transform(**...)`` takes.

    Keys: ``input_size``, ``interpolation``, ``mean``, ``std``, ``crop_pct``,
    ``crop_mode``. The values come from ``pretrained_cfg`` (a ``pretrained_cfg`` dict)
    or ``model`` (anything ``transforms`` takes: a model, a weights file, a name, a
    ``DataConfig``); ``args`` (timm's command-line names: ``input_size``, ``img_size``,
    ``in_chans``, ``interpolation``, ``mean``, ``std``, ``crop_pct``, ``crop_mode``)
    replace them where not ``None``. ``use_test_size=True`` takes the test size and crop
    where the weights name them, as timm's validation does.
    """
    if pretrained_cfg is not None:
        known = {f for f in DataConfig.__dataclass_fields__ if f in pretrained_cfg and pretrained_cfg[f] is not None}
        data = DataConfig.from_dict({f: pretrained_cfg[f] for f in known})
    elif model is not None:
        data = data_config(model)
    else:
        data = DataConfig()
    test = use_test_size and data.test_input_size is not None
    config: dict[str, Any] = {
        "input_size": data.test_input_size if test else data.input_size,
        "interpolation": data.interpolation,
        "mean": data.mean,
        "std": data.std,
        "crop_pct": data.test_crop_pct if use_test_size and data.test_crop_pct else data.crop_pct,
        "crop_mode": data.crop_mode,
    }
    given = {k: v for k, v in (args or {}).items() if v is not None}
    channels = int(given.get("in_chans", config["input_size"][0]))
    if "input_size" in given:
        config["input_size"] = tuple(given["input_size"])
    elif "img_size" in given:
        side = given["img_size"]
        config["input_size"] = (channels, *(tuple(side) if isinstance(side, tuple | list) else (side, side)))
    else:
        config["input_size"] = (channels, *config["input_size"][1:])
    config.update({k: tuple(given[k]) if k in ("mean", "std") else given[k]
                   for k in ("interpolation", "mean", "std", "crop_pct", "crop_mode") if k in given})
    return config


@dataclass(frozen=True)
class ToChannels:
    """An image with ``channels`` channels (1: grey, 3: RGB), of the type it came as."""

    channels: int

    def __call__(self, image: Any) -> Any:
        if isinstance(image, Tensor):
            return self._tensor(image)
        from PIL import Image

        if not isinstance(image, Image.Image):
            raise DataError(f"an image must be a PIL image or a C x H x W tensor, not {type(image).__name__}")
        if self.channels not in (1, 3):
            raise DataError(f"cannot make a {self.channels}-channel input from a PIL image; pass a C x H x W tensor")
        mode = "L" if self.channels == 1 else "RGB"
        if image.mode == mode:
            return image
        if image.mode in SIXTEEN_BIT_MODES:
            # the top 8 of 16 bits, as torchvision's uint16 -> uint8 conversion keeps
            import numpy as np

            image = Image.fromarray((np.asarray(image, dtype=np.int64).clip(0, 65535) >> 8).astype(np.uint8))
        elif image.mode in ("P", "PA"):
            image = image.convert("RGBA")  # a palette's transparency, then dropped like any alpha
        return image.convert(mode)

    def _tensor(self, image: Tensor) -> Tensor:
        if image.dtype != torch.uint8 and not image.is_floating_point():
            raise DataError(f"an image tensor must be uint8 (0..255) or floating point (0..1), not {image.dtype}")
        if image.ndim == 2:
            image = image.unsqueeze(0)
        if image.ndim > 4:
            raise DataError(f"an image tensor must be C x H x W (or a batch, N x C x H x W), got shape {tuple(image.shape)}")
        have = image.shape[-3] if image.ndim >= 3 else 0
        if have == self.channels:
            return image
        if have not in (1, 2, 3, 4):
            raise DataError(f"an image tensor must be C x H x W with 1 to 4 channels, got shape {tuple(image.shape)}"
                            " (an H x W x C array? permute it)")
        if have in (2, 4):
            image = image[..., : have - 1, :, :]  # drop alpha
            have -= 1
        if have == self.channels:
            return image
        if self.channels == 1:
            from torchvision.transforms.v2.functional import rgb_to_grayscale

            return rgb_to_grayscale(image)
        if have == 1:
            return image.expand(*image.shape[:-3], self.channels, *image.shape[-2:])
        raise DataError(f"cannot make a {self.channels}-channel input from a {have}-channel image tensor")


@dataclass(frozen=True)
class ShorterSide:
    """Resize so the shorter side is ``size``, keeping the aspect ratio (antialiased).

    A ``uint8`` tensor is resized in float32 and rounded back, as torchvision's
    classification preset and the trainer do, so the result does not depend on which
    native ``uint8`` kernel the CPU gets."""

    size: int
    interpolation: str = "bilinear"
    squash: bool = False  # resize both sides to ``size`` instead (timm's crop_mode 'squash')

    def __call__(self, image: Any) -> Any:
        from torchvision.transforms.v2.functional import resize

        mode, sides = self.interpolation, [self.size, self.size] if self.squash else [self.size]
        if not (isinstance(image, Tensor) and image.dtype == torch.uint8):
            return resize(image, sides, interpolation=_mode(mode), antialias=True)
        resized = resize(image.float(), sides, interpolation=_mode(mode), antialias=True)
        if resized.shape == image.shape:
            return image
        return resized.clamp_(0, 255).round_().to(torch.uint8)


@dataclass(frozen=True)
class ToFloat:
    """A float32 tensor in [0, 1]: ``uint8`` divided by 255 (as the trainer's batches and
    torchvision's and timm's eval are; v2's ``ToDtype`` multiplies by 1/255, which can
    be one float step away)."""

    def __call__(self, image: Tensor) -> Tensor:
        return image.float().div(255) if image.dtype == torch.uint8 else image.float()


def _mode(name: str):
    from torchvision.transforms.v2 import InterpolationMode

    return InterpolationMode(name)
