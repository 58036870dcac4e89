"""Registered datasets (the bundled plugin), the DatasetFactory contract, and how the
core fits images to a model and shards batches across processes."""

import re

import numpy as np
import pytest
import torch
from PIL import Image

import registry_core
from registry_core import DataError, DatasetFactory, hookimpl
from registry_core.plugins import default_host, reload_plugins
from registry_core.training.data import Resized, ShardedBatches, load_dataset, normalize, resize


def test_bundled_datasets_are_registered_by_the_datasets_plugin():
    assert {"digits", "folder", "mnist", "cifar10", "fake"} <= set(registry_core.list_datasets())
    provided = {r.name: r.provided for r in registry_core.list_plugins()}
    assert set(provided["datasets"]["dataset"]) >= {"digits", "folder", "mnist", "cifar10", "fake"}


def test_digits_are_real_8x8_images_split_by_seed():
    data = load_dataset("digits")
    assert data.classes == [str(d) for d in range(10)] and data.channels == 1
    assert len(data.train) + len(data.val) == 1797
    image, label = data.train[0]
    assert image.shape == (1, 8, 8) and 0 <= image.min() and image.max() <= 1 and 0 <= int(label) < 10
    again = load_dataset("digits")
    other = load_dataset("digits", seed=1)
    assert again.val.indices == data.val.indices and other.val.indices != data.val.indices
    assert len(load_dataset("digits", val_fraction=0.5).val) == 898


def test_fake_images_follow_the_options_and_carry_a_class_signal():
    data = load_dataset("fake", train_size=40, val_size=8, num_classes=4, channels=2, image_size=12)
    assert (len(data.train), len(data.val), data.classes, data.channels) == (40, 8, ["class_0", "class_1", "class_2", "class_3"], 2)
    images, labels = data.train.tensors
    assert images.dtype == torch.uint8 and images.shape == (40, 2, 12, 12)
    means = torch.stack([images[labels == c].float().mean(0) for c in labels.unique()])
    assert (means[0] - means[1]).abs().mean() > 10  # each class has its own pattern
    with pytest.raises(DataError, match="num_classes must be at least 1"):
        load_dataset("fake", num_classes=0)


def _write_images(folder, classes, per_class, size=(10, 7)):
    for c in classes:
        (folder / c).mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(np.full((*size[::-1], 3), 40 * i, dtype=np.uint8)).save(folder / c / f"{i}.png")


def test_folder_reads_train_and_val_subfolders(tmp_path):
    _write_images(tmp_path / "train", ["cat", "dog"], 3)
    _write_images(tmp_path / "val", ["cat", "dog"], 2)
    data = load_dataset("folder", str(tmp_path))
    assert data.classes == ["cat", "dog"] and (len(data.train), len(data.val), data.channels) == (6, 4, 3)
    image, label = data.val[3]
    assert image.dtype == torch.uint8 and image.shape == (3, 7, 10) and label == 1


def test_folder_splits_a_single_tree_by_fraction(tmp_path):
    _write_images(tmp_path, ["a", "b", "c"], 4)
    data = load_dataset("folder", str(tmp_path), val_fraction=0.25, seed=3)
    assert (len(data.train), len(data.val)) == (9, 3)
    assert not set(data.train.indices) & set(data.val.indices)


def test_folder_errors_say_what_layout_is_expected(tmp_path):
    with pytest.raises(DataError, match="needs --data-root"):
        load_dataset("folder")
    with pytest.raises(DataError, match="does not exist.*train/<class>"):
        load_dataset("folder", str(tmp_path / "nowhere"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="expected train/<class>"):
        load_dataset("folder", str(tmp_path / "empty"))
    _write_images(tmp_path / "mixed" / "train", ["a", "b"], 1)
    _write_images(tmp_path / "mixed" / "val", ["a", "c"], 1)
    with pytest.raises(DataError, match="classes"):
        load_dataset("folder", str(tmp_path / "mixed"))


def _idx(path, array: np.ndarray):
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def test_mnist_reads_local_idx_files_and_never_downloads(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 6), ("t10k", 3)):
        _idx(raw / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)))
        _idx(raw / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 10)
    data = load_dataset("mnist", str(tmp_path))
    assert (len(data.train), len(data.val), data.channels, len(data.classes)) == (6, 3, 1, 10)
    assert data.val[2][0].shape == (1, 28, 28) and int(data.val[2][1]) == 2


@pytest.mark.parametrize("name, where, source", [
    ("mnist", "MNIST/raw", "http://yann.lecun.com/exdb/mnist/"),
    ("cifar10", "cifar-10-batches-py", "https://www.cs.toronto.edu/~kriz/cifar.html"),
])
def test_missing_files_say_where_to_put_them_and_where_they_come_from(tmp_path, name, where, source):
    with pytest.raises(DataError, match=f"needs --data-root.*{re.escape(source)}"):
        load_dataset(name)
    with pytest.raises(DataError, match=f"{where}.*{re.escape(source)}|{re.escape(source)}.*{where}"):
        load_dataset(name, str(tmp_path))
    assert list(tmp_path.iterdir()) == []  # nothing was downloaded or created


def test_unknown_dataset_and_bad_options_are_data_errors():
    with pytest.raises(DataError, match="unknown dataset 'digit'; did you mean 'digits'"):
        load_dataset("digit")
    with pytest.raises(DataError, match="cannot be loaded with options"):
        load_dataset("digits", colour=True)


class _ContractBreaker(DatasetFactory):
    def __init__(self, result):
        self.result = result

    def load(self, root, **options):
        return self.result


@pytest.fixture
def add_dataset():
    """Register datasets from a throw-away plugin on the default host; forget them after."""

    def add(name, factory):
        class Plugin:
            @hookimpl
            def register_datasets(self, register):
                register(name, factory)

        default_host().add_plugin(Plugin(), f"test-{name}")

    yield add
    reload_plugins()


def test_a_third_party_dataset_is_loaded_and_its_contract_checked(add_dataset):
    images = torch.rand(5, 3, 4, 4)
    good = torch.utils.data.TensorDataset(images, torch.arange(5) % 2)
    add_dataset("mine", _ContractBreaker((good, good, ["x", "y"])))
    assert load_dataset("mine").channels == 3
    add_dataset("pair", _ContractBreaker((good, good)))
    with pytest.raises(DataError, match=r"must return \(train, val, classes\)"):
        load_dataset("pair")
    flat = torch.utils.data.TensorDataset(torch.rand(5, 16), torch.zeros(5))
    add_dataset("flat", _ContractBreaker((flat, flat, ["x"])))
    with pytest.raises(DataError, match="C x H x W"):
        load_dataset("flat")


def test_a_dataset_without_load_is_refused_at_registration(add_dataset):
    with pytest.warns(registry_core.PluginWarning, match="load"):
        add_dataset("broken", object())
    with pytest.raises(DataError, match="broken plugins that may have provided it: test-broken"):
        load_dataset("broken")


def test_resize_keeps_dtype_and_range_and_normalize_uses_the_models_statistics():
    grey = torch.full((1, 8, 8), 0.5)
    assert torch.allclose(resize(grey, 32), torch.full((1, 32, 32), 0.5))
    bytes_ = torch.full((3, 40, 30), 255, dtype=torch.uint8)
    small = resize(bytes_, 16)
    assert small.dtype == torch.uint8 and small.shape == (3, 16, 16) and (small == 255).all()
    batch = torch.stack([torch.zeros(2, 2, 2, dtype=torch.uint8), torch.full((2, 2, 2), 255, dtype=torch.uint8)])
    out = normalize(batch, (0.5, 0.25), (0.5, 0.25))
    assert torch.allclose(out[0, 0], torch.full((2, 2), -1.0)) and torch.allclose(out[1, 1], torch.full((2, 2), 3.0))
    resized = Resized(torch.utils.data.TensorDataset(grey[None], torch.tensor([7])), 16)
    image, label = resized[0]
    assert image.shape == (1, 16, 16) and label == 7


def test_sharded_batches_together_are_the_single_process_batches():
    single = list(ShardedBatches(102, 8, shuffle=True, seed=5, epoch=2))
    assert len(single) == len(ShardedBatches(102, 8, shuffle=True, seed=5, epoch=2)) == 13
    assert [len(b) for b in single] == [8] * 12 + [6] and sorted(i for b in single for i in b) == list(range(102))
    ranks = [list(ShardedBatches(102, 8, rank=r, world=2, shuffle=True, seed=5, epoch=2)) for r in (0, 1)]
    assert len(ranks[0]) == len(ranks[1]) == 13
    for i, batch in enumerate(single):  # the partial last batch too
        assert sorted(batch) == sorted(ranks[0][i] + ranks[1][i])
    assert single != list(ShardedBatches(102, 8, shuffle=True, seed=5, epoch=3))
    assert list(ShardedBatches(102, 8, shuffle=True, seed=5, epoch=2, skip=10)) == single[10:]
    odd = [list(ShardedBatches(103, 8, rank=r, world=2, shuffle=True)) for r in (0, 1)]
    assert [len(b) for b in odd[0]] == [len(b) for b in odd[1]] == [4] * 12 + [3]  # equal shares: 1 image waits


def test_every_training_image_is_used_and_a_single_image_joins_the_batch_before():
    assert [len(b) for b in ShardedBatches(90, 64, shuffle=True)] == [64, 26]
    assert [len(b) for b in ShardedBatches(65, 64, shuffle=True)] == [64, 1]
    merged = ShardedBatches(129, 64, shuffle=True, merge_single=True)
    assert [len(b) for b in merged] == [64, 65] and len(merged) == 2 and merged.last_batch() == 65
    assert sorted(i for b in merged for i in b) == list(range(129))
    assert [len(b) for b in ShardedBatches(1, 64, shuffle=True, merge_single=True)] == [1]  # nothing to join


def test_validation_batches_cover_every_image_once():
    batches = [list(ShardedBatches(10, 4, rank=r, world=2)) for r in (0, 1)]
    assert [len(b) for b in batches] == [len(ShardedBatches(10, 4, rank=r, world=2)) for r in (0, 1)]
    assert sorted(i for rank in batches for b in rank for i in b) == list(range(10))
    with pytest.raises(DataError, match="divisible"):
        ShardedBatches(10, 5, world=2)
