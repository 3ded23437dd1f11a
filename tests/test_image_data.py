"""One interface for image datasets: shapes, and MNIST / Fashion-MNIST / CIFAR-10 read from tiny on-disk fixtures."""
import os
import pickle
import struct

import numpy as np
import pytest
import torch
import torchvision.datasets

from diffusion_course.data.shapes import make_shapes
from diffusion_course.data.standard_datasets import (
    CHANNELS,
    CLASS_NAMES,
    DATASETS,
    DatasetUnavailable,
    dataset_folder,
    load_images,
    to_signed_unit,
    try_load_images,
)

# --- fixtures in the formats torchvision reads ------------------------------------------------------


def _write_idx(path, array: np.ndarray) -> None:
    """An idx-ubyte file (LeCun's MNIST format): magic 0x08 (ubyte) + rank, big-endian sizes, raw bytes."""
    with open(path, "wb") as f:
        f.write(struct.pack(">I", 0x0800 + array.ndim) + struct.pack(f">{array.ndim}I", *array.shape))
        f.write(array.astype(np.uint8).tobytes())


def _mnist_like(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    images[0] = 255  # a white image and a black one, whose values are known after resizing
    images[1] = 0
    return images, rng.integers(0, 10, size=n).astype(np.uint8)


@pytest.fixture
def mnist_root(tmp_path):
    """MNIST and FashionMNIST raw folders with 6 train and 4 test images each."""
    for folder in ("MNIST", "FashionMNIST"):
        raw = tmp_path / folder / "raw"
        raw.mkdir(parents=True)
        for prefix, n in (("train", 6), ("t10k", 4)):
            images, labels = _mnist_like(n, seed=n)
            _write_idx(raw / f"{prefix}-images-idx3-ubyte", images)
            _write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)
    return tmp_path


def _cifar_batch(n: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, size=(n, 3 * 32 * 32), dtype=np.uint8)  # rows: 1024 R, 1024 G, 1024 B values
    return {"data": data, "labels": rng.integers(0, 10, size=n).tolist()}


@pytest.fixture
def cifar_root(tmp_path):
    """A cifar-10-batches-py folder: five train batches of 2 images, a test batch of 3, the metadata."""
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for i, name in enumerate(names):
        with open(folder / name, "wb") as f:
            pickle.dump(_cifar_batch(3 if name == "test_batch" else 2, seed=i), f)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": list(CLASS_NAMES["cifar10"])}, f)
    return tmp_path


@pytest.fixture
def skip_cifar_md5(monkeypatch):
    """torchvision checks CIFAR files against the md5 sums of the real ones, which a fixture cannot match.

    Only that comparison is bypassed: the files must still exist, and everything after it is real.
    """
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda fpath, md5=None: os.path.isfile(fpath))


# --- tests ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_mnist_style_loads_one_channel_32px_in_range(mnist_root, name):
    images, labels = load_images(name, "train", root=mnist_root)
    _, want_labels = _mnist_like(6, seed=6)
    assert images.shape == (6, CHANNELS[name], 32, 32) and CHANNELS[name] == 1
    assert images.dtype == torch.float32 and labels.dtype == torch.int64
    assert torch.equal(labels, torch.as_tensor(want_labels, dtype=torch.int64))
    assert images.min() >= -1 and images.max() <= 1
    assert torch.allclose(images[0], torch.ones(1, 32, 32)) and torch.allclose(images[1], -torch.ones(1, 32, 32))
    test_images, test_labels = load_images(name, "test", root=mnist_root, n=3)
    assert test_images.shape == (3, 1, 32, 32) and len(test_labels) == 3
    assert torch.equal(load_images(name, "train", root=mnist_root, n=2)[0], images[:2])


def test_cifar_loads_rgb_exactly(cifar_root, skip_cifar_md5):
    images, labels = load_images("cifar10", "train", root=cifar_root)
    assert images.shape == (10, 3, 32, 32) and CHANNELS["cifar10"] == 3
    first = _cifar_batch(2, seed=0)
    raw = torch.as_tensor(first["data"][0]).reshape(3, 32, 32)  # channel-major, as CIFAR stores it
    assert torch.equal(images[0], raw.float() / 127.5 - 1)
    assert labels[:2].tolist() == first["labels"] and labels.dtype == torch.int64
    test_images, _ = load_images("cifar10", "test", root=cifar_root)
    assert test_images.shape == (3, 3, 32, 32)


def test_cifar_fixture_without_the_md5_bypass_gives_the_clear_sentence(cifar_root):
    with pytest.raises(DatasetUnavailable, match="CIFAR-10 is not on disk") as err:
        load_images("cifar10", "train", root=cifar_root)
    _assert_one_sentence(str(err.value))
    assert str(dataset_folder("cifar10", cifar_root)) in str(err.value)


def _assert_one_sentence(message: str) -> None:
    assert "\n" not in message and message.endswith(".") and message.count(". ") == 0
    assert "'shapes'" in message


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist", "cifar10"])
def test_missing_dataset_fails_with_one_sentence_and_downloads_nothing(tmp_path, monkeypatch, capsys, name):
    calls = []
    for cls in (torchvision.datasets.MNIST, torchvision.datasets.CIFAR10):
        monkeypatch.setattr(cls, "download", lambda self: calls.append(self))
    with pytest.raises(DatasetUnavailable) as err:
        load_images(name, "train", root=tmp_path)
    _assert_one_sentence(str(err.value))
    assert err.value.__suppress_context__ and "download=True" in str(err.value)
    assert try_load_images(name, root=tmp_path) is None
    assert capsys.readouterr().out.strip() == str(err.value)
    assert calls == [] and list(tmp_path.iterdir()) == []


def test_download_only_when_asked_and_its_failure_is_one_sentence(tmp_path, monkeypatch):
    def offline(self):
        raise OSError("network unreachable")
    monkeypatch.setattr(torchvision.datasets.MNIST, "download", offline)
    with pytest.raises(DatasetUnavailable, match="could not be downloaded") as err:
        load_images("mnist", root=tmp_path, download=True)
    _assert_one_sentence(str(err.value))
    assert "network unreachable" in err.value.detail


def test_shapes_through_the_same_interface():
    images, labels = load_images("shapes", "test", n=50, seed=4)
    ref = make_shapes(50, "test", seed=4)
    assert torch.equal(images, ref.images) and torch.equal(labels, ref.labels)
    assert images.shape[1] == CHANNELS["shapes"]
    assert try_load_images("shapes", n=3)[0].shape == (3, 3, 32, 32)


def test_vocabulary_tables_cover_every_dataset():
    assert set(CHANNELS) == set(CLASS_NAMES) == set(DATASETS)
    assert all(len(CLASS_NAMES[name]) == 10 for name in ("mnist", "fashion_mnist", "cifar10"))
    torch.testing.assert_close(to_signed_unit(torch.tensor([0, 255], dtype=torch.uint8)), torch.tensor([-1.0, 1.0]))


def test_bad_arguments():
    with pytest.raises(ValueError, match="name must be one of"):
        load_images("imagenet")
    with pytest.raises(ValueError, match="split must be one of"):
        load_images("mnist", "validation")
    with pytest.raises(ValueError, match="n must be None"):
        load_images("shapes", n=-1)
    with pytest.raises(ValueError, match="name must be one of"):
        dataset_folder("shapes")
