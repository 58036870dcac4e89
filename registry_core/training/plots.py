"""Figures, drawn with matplotlib (the ``plots`` extra): a run's curves and a confusion matrix."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from ..errors import TrainingError
from ..files import atomic_write

MISSING = "pip install 'registry-core[plots]'"
LABELLED = 60  # up to this many classes, the axes name every class
ANNOTATED = 20  # up to this many, each cell shows its count


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    return pyplot


def require_matplotlib(what: str) -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise TrainingError(f"{what} needs matplotlib: {MISSING}") from None


def _save(figure, path: Path) -> None:
    with atomic_write(path) as handle:
        figure.savefig(handle, format="png", dpi=100)


def write_curves(path: Path, history: list[dict[str, Any]]) -> bool:
    """Loss and accuracy per epoch as a PNG; ``False`` (with a warning) without matplotlib.
    Top-5 and the weights' average are drawn when the records have them."""
    try:
        plt = _pyplot()
    except ImportError:
        warnings.warn(f"matplotlib is not installed, so {path.name} was not drawn ({MISSING})", stacklevel=2)
        return False
    epochs = [r["epoch"] for r in history]
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(epochs, [r["train_loss"] for r in history], marker="o", label="train")
    left.plot(epochs, [r["val_loss"] for r in history], marker="o", label="validation")
    left.set(title="loss", xlabel="epoch")
    right.plot(epochs, [r["train_acc"] for r in history], marker="o", label="train top-1")
    right.plot(epochs, [r["val_top1"] for r in history], marker="o", label="validation top-1")
    if "val_top5" in history[-1]:
        right.plot(epochs, [r["val_top5"] for r in history], marker=".", linestyle=":", label="validation top-5")
    if "val_ema_top1" in history[-1]:
        right.plot(epochs, [r["val_ema_top1"] for r in history], marker=".", label="validation top-1, EMA")
    right.set(title="accuracy (%)", xlabel="epoch")
    for axes in (left, right):
        axes.grid(alpha=0.3)
        axes.legend()
    figure.tight_layout()
    _save(figure, path)
    plt.close(figure)
    return True


def write_confusion(path: Path, matrix: list[list[int]], classes: list[str], title: str = "") -> None:
    """The confusion matrix (rows: the true class, columns: the predicted one), each row
    shaded by its share of the class's images, with the class names on both axes."""
    require_matplotlib("a confusion matrix plot")
    plt = _pyplot()
    n = len(classes)
    shares = [[count / max(sum(row), 1) for count in row] for row in matrix]
    side = min(max(5.0, 0.3 * n + 2), 40.0)
    figure, axes = plt.subplots(figsize=(side + 1, side))
    image = axes.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04, label="share of the true class")
    if n <= LABELLED:
        axes.set_xticks(range(n), classes, rotation=90)
        axes.set_yticks(range(n), classes)
    if n <= ANNOTATED:
        for row in range(n):
            for column in range(n):
                if matrix[row][column]:
                    axes.text(column, row, str(matrix[row][column]), ha="center", va="center", fontsize=8,
                              color="white" if shares[row][column] > 0.5 else "black")
    axes.set(xlabel="predicted class", ylabel="true class", title=title)
    figure.tight_layout()
    _save(figure, path)
    plt.close(figure)
