"""Write a folder of real-looking calibration images: crops and flips of scikit-learn's two sample photographs.

``sklearn.datasets.load_sample_images()`` ships two 427 x 640 photographs (a Chinese
temple, a flower). Each image written here is a random square crop of one of them,
between a third and all of its height, flipped left-right half the time, at its crop's
size (the model's transforms resize it). Only two scenes: a calibration set for int8
quantisation that looks like photographs, not a representative sample of ImageNet.

    python benchmarks/sample_photos.py photos/ [--count 48] [--seed 0]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.datasets import load_sample_images


def write_crops(folder: Path, count: int, seed: int = 0) -> list[Path]:
    """``count`` crops of the two photographs as JPEG files in ``folder``, alternating between them."""
    folder.mkdir(parents=True, exist_ok=True)
    photos = [Image.fromarray(array) for array in load_sample_images().images]
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(count):
        photo = photos[i % len(photos)]
        side = int(rng.integers(photo.height // 3, photo.height + 1))
        left, top = int(rng.integers(0, photo.width - side + 1)), int(rng.integers(0, photo.height - side + 1))
        crop = photo.crop((left, top, left + side, top + side))
        if rng.random() < 0.5:
            crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        path = folder / f"photo_{i:03d}.jpg"
        crop.save(path, quality=92)
        paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--count", type=int, default=48, help="images to write (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    paths = write_crops(args.folder, args.count, args.seed)
    print(f"wrote {len(paths)} crops of scikit-learn's two sample photographs to {args.folder}")


if __name__ == "__main__":
    main()
