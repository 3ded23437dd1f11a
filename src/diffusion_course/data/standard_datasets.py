"""Image datasets behind one call: the built-in shapes, or MNIST, Fashion-MNIST and CIFAR-10 from disk.

`load_images(name, split)` returns (images, labels): images float32 (N, C, 32, 32) in [-1, 1]
(8-bit value v becomes v / 127.5 - 1), labels int64 (N,). MNIST and Fashion-MNIST keep their one
channel (C = 1, see CHANNELS) and are resized from 28×28 to 32×32 bilinearly; CIFAR-10 and shapes
are 32×32 RGB already.

The real datasets are read by torchvision from `root` (default: $DIFFUSION_COURSE_DATA, else
~/.cache/diffusion_course/data), in torchvision's layout: <root>/MNIST/raw/, <root>/FashionMNIST/raw/
(the four idx-ubyte files each) and <root>/cifar-10-batches-py/. Nothing is downloaded unless the
caller passes download=True. A dataset that is missing raises `DatasetUnavailable`, whose message is
one sentence; notebooks call `try_load_images`, which prints that sentence and returns None.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from .shapes import SHAPES, SPLIT_SIZES, SPLITS, make_shapes

DATASETS = ("shapes", "mnist", "fashion_mnist", "cifar10")
#: Channels of each dataset's images: the greyscale ones stay greyscale.
CHANNELS = {"shapes": 3, "mnist": 1, "fashion_mnist": 1, "cifar10": 3}
#: Name of each label id, per dataset.
CLASS_NAMES = {
    "shapes": SHAPES,
    "mnist": tuple(str(d) for d in range(10)),
    "fashion_mnist": ("T-shirt/top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag",
                      "ankle boot"),
    "cifar10": ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
}
#: Environment variable naming the folder that holds the real datasets.
DATA_ENV_VAR = "DIFFUSION_COURSE_DATA"
IMAGE_SIZE = 32

# name -> (torchvision class, name for people, folder torchvision reads under root)
_TORCHVISION = {
    "mnist": ("MNIST", "MNIST", Path("MNIST", "raw")),
    "fashion_mnist": ("FashionMNIST", "Fashion-MNIST", Path("FashionMNIST", "raw")),
    "cifar10": ("CIFAR10", "CIFAR-10", Path("cifar-10-batches-py")),
}


class DatasetUnavailable(RuntimeError):
    """A real dataset is not on disk (or could not be downloaded); the message says so in one sentence.

    `detail` keeps the underlying error's text for debugging.
    """

    def __init__(self, message: str, detail: str = ""):
        super().__init__(message)
        self.detail = detail


def default_root() -> Path:
    """Where real datasets are looked for: $DIFFUSION_COURSE_DATA, else ~/.cache/diffusion_course/data."""
    return Path(os.environ.get(DATA_ENV_VAR) or "~/.cache/diffusion_course/data").expanduser()


def dataset_folder(name: str, root: str | Path | None = None) -> Path:
    """The folder in which torchvision expects the files of the real dataset `name`."""
    if name not in _TORCHVISION:
        raise ValueError(f"name must be one of {tuple(_TORCHVISION)} (the datasets read from disk), got {name!r}")
    return Path(root if root is not None else default_root()).expanduser() / _TORCHVISION[name][2]


def to_signed_unit(pixels: Tensor) -> Tensor:
    """8-bit values (any integer or float dtype, 0-255) to float32 in [-1, 1]: v / 127.5 - 1."""
    return pixels.to(torch.float32) / 127.5 - 1


def _check_args(name: str, split: str, n) -> None:
    if name not in DATASETS:
        raise ValueError(f"name must be one of {DATASETS}, got {name!r}")
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 0):
        raise ValueError(f"n must be None (all images) or a non-negative int, got {n!r}")


def _read_torchvision(name: str, split: str, root: Path, download: bool) -> tuple[Tensor, Tensor]:
    """The raw uint8 pixels (N, H, W) or (N, H, W, 3) and int64 labels, as torchvision reads them."""
    cls_name, title, _ = _TORCHVISION[name]
    where = dataset_folder(name, root)
    try:
        import torchvision.datasets

        ds = getattr(torchvision.datasets, cls_name)(str(root), train=split == "train", download=download)
    except ImportError as err:
        raise DatasetUnavailable(f"{title} is read with torchvision, which is not installed; install it "
                                 "(pip install torchvision) or use the built-in 'shapes' dataset.", repr(err)) from None
    except Exception as err:  # torchvision raises RuntimeError, OSError, URLError, pickle errors...
        if download:
            message = (f"{title} could not be downloaded to {where}; check the network, or put the files there "
                       "yourself, or use the built-in 'shapes' dataset.")
        else:
            message = (f"{title} is not on disk under {where} (or its files are corrupt), and nothing is "
                       "downloaded unless you pass download=True; put the files there or use the built-in "
                       "'shapes' dataset.")
        raise DatasetUnavailable(message, repr(err)) from None
    return torch.as_tensor(ds.data), torch.as_tensor(ds.targets, dtype=torch.int64)


def _to_images(pixels: Tensor) -> Tensor:
    """uint8 (N, H, W) or (N, H, W, 3) to float32 (N, C, 32, 32) in [-1, 1], resized bilinearly if needed."""
    x = pixels[:, None] if pixels.ndim == 3 else pixels.permute(0, 3, 1, 2)
    x = to_signed_unit(x.contiguous())
    if x.shape[-1] != IMAGE_SIZE or x.shape[-2] != IMAGE_SIZE:
        x = F.interpolate(x, size=(IMAGE_SIZE, IMAGE_SIZE), mode="bilinear", align_corners=False, antialias=True)
    return x.clamp_(-1, 1)


def load_images(name: str, split: str = "train", root: str | Path | None = None, n: int | None = None, *,
                seed: int = 0, download: bool = False) -> tuple[Tensor, Tensor]:
    """(images, labels) of dataset `name` (one of DATASETS): float32 (N, CHANNELS[name], 32, 32) in [-1, 1], int64 (N,).

    n: the first n images (None: the whole split; for "shapes", SPLIT_SIZES[split]).
    seed: only for "shapes". root, download: only for the real datasets (see the module docstring).
    """
    _check_args(name, split, n)
    if name == "shapes":
        batch = make_shapes(SPLIT_SIZES[split] if n is None else n, split, seed)
        return batch.images, batch.labels
    root = Path(root if root is not None else default_root()).expanduser()
    pixels, labels = _read_torchvision(name, split, root, download)
    if n is not None:
        pixels, labels = pixels[:n], labels[:n]
    return _to_images(pixels), labels


def try_load_images(name: str, split: str = "train", **kwargs) -> tuple[Tensor, Tensor] | None:
    """`load_images`, except that a dataset missing from disk prints the one-sentence reason and returns None.

    For notebooks: `data = try_load_images("cifar10")`, then skip the cells that need it when `data is None`.
    """
    try:
        return load_images(name, split, **kwargs)
    except DatasetUnavailable as err:
        print(err)
        return None
