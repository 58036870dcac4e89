"""Labelling images with a model: ``predict(model, images)``.

Each image goes through the model's own preprocessing (``transforms``, from the data
config its weights or its exported file recorded), batches run in eval mode, and the
softmax of the main logits gives the top classes, named by the class names the file
recorded (the class index otherwise). The batches run on torch (under
``torch.inference_mode``) or on ONNX Runtime over an exported file (``runtime.py``).
Image files are decoded one batch at a time, so a long list never sits in memory
whole; a file that is missing, not an image, or damaged is a ``DataError`` naming it.
"""

from __future__ import annotations

import glob
import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..errors import DataError
from .runtime import runner
from .transforms import transforms

IMAGE_SUFFIXES = (".bmp", ".gif", ".jpeg", ".jpg", ".pgm", ".png", ".ppm", ".tif", ".tiff", ".webp")
LONG = 100  # images: shorter lists finish before a progress bar is worth drawing


@dataclass(frozen=True)
class ClassScore:
    """One of an image's top classes: its label, its probability and its index."""

    label: str
    probability: float
    index: int


@dataclass(frozen=True)
class Prediction:
    """The top classes of one image, most probable first. ``image`` names it: the path
    it was read from, a PIL image's file name, or its place in the list."""

    image: str
    top: tuple[ClassScore, ...]

    @property
    def label(self) -> str:
        return self.top[0].label

    @property
    def probability(self) -> float:
        return self.top[0].probability

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape ``registry-core predict --json`` prints for one image."""
        return {"image": self.image, "predictions": [{"label": s.label, "index": s.index, "probability": s.probability}
                                                     for s in self.top]}


def predict(model: Any, images: Any, *, top_k: int = 5, batch_size: int = 32, progress: bool | None = None,
            runtime: str | None = None) -> list[Prediction]:
    """The ``top_k`` classes of each image, one ``Prediction`` per image, in order.

    ``model`` is a model, a weights file, an exported ``.onnx`` file or an
    ``OnnxModel``. ``runtime`` is ``"torch"`` or ``"onnxruntime"``; by default an ONNX
    file runs on ONNX Runtime and anything else on torch. A model or weights file asked
    to run on ONNX Runtime is exported once into ``$REGISTRY_CORE_HOME/onnx`` and that
    file is reused. ``images`` is one image or a list of them: paths, PIL images,
    ``C x H x W`` tensors (``uint8`` 0..255 or float 0..1, not normalised) or a mix; an
    ``N x C x H x W`` tensor is N images. ``progress``: ``None`` shows a bar for long
    lists when stderr is a terminal; ``True`` always, ``False`` never. A torch model
    runs on its own device and dtype and is put back in the mode it was in.
    """
    if top_k < 1 or batch_size < 1:
        raise ValueError(f"top_k and batch_size must be at least 1, got top_k={top_k}, batch_size={batch_size}")
    run = runner(model, runtime)
    items = _as_list(images)
    transform = transforms(run.data_config)
    bar = _progress_bar(len(items), progress)
    results: list[Prediction] = []
    try:
        with run.running() as logits_of:
            for start in range(0, len(items), batch_size):
                chunk = items[start : start + batch_size]
                batch = torch.stack([_prepared(item, start + i, transform) for i, item in enumerate(chunk)])
                logits = logits_of(batch)
                results += _top(logits.float().softmax(dim=1), top_k, run.class_names,
                                [_name(item, start + i) for i, item in enumerate(chunk)])
                if bar is not None:
                    bar.update(len(chunk))
    finally:
        if bar is not None:
            bar.close()
    return results


def read_image(path: str | os.PathLike) -> Any:
    """The PIL image in ``path``, decoded now and turned upright by its EXIF orientation
    (as a viewer shows it); any failure is a ``DataError`` that names the file."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path)
    if path.is_dir():
        raise DataError(f"{path}: a folder, not an image")
    try:
        with Image.open(path) as image:
            image.load()
            return ImageOps.exif_transpose(image)
    except FileNotFoundError:
        raise DataError(f"{path}: no such image file") from None
    except PermissionError:
        raise DataError(f"{path}: cannot read it (permission denied)") from None
    except UnidentifiedImageError:
        raise DataError(f"{path}: not an image (or not a format Pillow reads)") from None
    except Image.DecompressionBombError as exc:
        raise DataError(f"{path}: refused as too large to decode safely ({exc})") from None
    except (OSError, SyntaxError, ValueError) as exc:  # Pillow reports broken data in all three
        raise DataError(f"{path}: a damaged or truncated image ({exc})") from None


@dataclass
class FoundImages:
    """What ``find_images`` found: the files in order, and per folder or pattern the
    number of files it skipped because their names are not those of images."""

    files: list[Path] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)


def find_images(sources: Iterable[str | os.PathLike]) -> FoundImages:
    """The image files ``sources`` name: a file as it is; a folder's image files, sorted
    (not its subfolders); a glob pattern's matches (``**`` recursive) that are image
    files, sorted. Image files are told by their suffix (``IMAGE_SUFFIXES``). A name
    that is neither a file, a folder nor a pattern is a ``DataError``, and so is
    finding no image at all."""
    found = FoundImages()
    for source in map(str, sources):
        path = Path(source)
        if path.is_file():
            found.files.append(path)
            continue
        if path.is_dir():
            candidates = [p for p in sorted(path.iterdir()) if p.is_file()]
        elif glob.has_magic(source):
            candidates = [Path(p) for p in sorted(glob.glob(source, recursive=True)) if Path(p).is_file()]
        else:
            raise DataError(f"{source}: no such file or folder")
        images = [p for p in candidates if p.suffix.lower() in IMAGE_SUFFIXES]
        found.files += images
        if len(images) < len(candidates):
            found.skipped[source] = len(candidates) - len(images)
    if not found.files:
        named = ", ".join(map(str, sources))
        raise DataError(f"no images found in {named} (image files end in {', '.join(IMAGE_SUFFIXES)})")
    return found


def _as_list(images: Any) -> list[Any]:
    if isinstance(images, Tensor):
        return list(images) if images.ndim == 4 else [images]
    if isinstance(images, str | os.PathLike) or hasattr(images, "getbands"):  # one path, or one PIL image
        return [images]
    if not isinstance(images, Sequence | Iterable):
        raise DataError(f"images must be paths, PIL images or tensors, or a list of them, not {type(images).__name__}")
    items = list(images)
    if not items:
        raise DataError("no images to predict")
    return items


def _prepared(item: Any, position: int, transform) -> Tensor:
    image = read_image(item) if isinstance(item, str | os.PathLike) else item
    try:
        return transform(image)
    except DataError as exc:
        raise DataError(f"{_name(item, position)}: {exc}") from None


def _name(item: Any, position: int) -> str:
    if isinstance(item, str | os.PathLike):
        return str(item)
    filename = getattr(item, "filename", "")
    return filename or f"<{'tensor' if isinstance(item, Tensor) else 'image'} {position}>"


def _top(probabilities: Tensor, top_k: int, class_names: Sequence[str] | None, names: list[str]) -> list[Prediction]:
    classes = probabilities.shape[1]
    labels = class_names if class_names is not None and len(class_names) == classes else None
    values, indices = probabilities.topk(min(top_k, classes), dim=1)
    return [Prediction(name, tuple(ClassScore(labels[i] if labels is not None else str(i), p, i)
                                   for p, i in zip(row_p.tolist(), row_i.tolist())))
            for name, row_p, row_i in zip(names, values, indices)]


def _progress_bar(total: int, wanted: bool | None):
    if not (wanted if wanted is not None else total >= LONG and sys.stderr.isatty()):
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc="predict", unit="image", leave=False, dynamic_ncols=True)
