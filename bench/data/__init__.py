"""Datasets: the registry, their loaders, and real batches on the training device.

A dataset split is loaded once as a uint8 tensor ``(N, C, H, W)`` on the training device; batches are drawn
by index there and normalised to ``[-1, 1]`` per batch: no per-sample PIL transforms, no worker processes.

One module per role: :mod:`bench.data.registry` (``DatasetSpec``, ``DATASETS``, integrity through
torchvision's ``check_integrity``), :mod:`bench.data.idx` (MNIST, Fashion-MNIST, KMNIST, EMNIST),
:mod:`bench.data.stacked` (Stacked MNIST), :mod:`bench.data.cifar` (CIFAR-10 through torchvision's reader),
:mod:`bench.data.folder` (a user's images), :mod:`bench.data.splits` (``load`` -> ``ImageData``) and
:mod:`bench.data.batches` (``BatchSource``, ``ShuffledBatches``). ``ganbench list`` shows the datasets, with
whether their files are present.

Files are found under ``data.root`` / ``$GANBENCH_DATA`` (read, never written to); with neither, torchvision
downloads them into ``<workdir>/data``. ``data.image_size`` / ``data.channels`` resize / convert any dataset
(e.g. MNIST at 32x32 as in the DCGAN paper's setups).
"""

from bench.data import cifar, folder, idx, stacked  # noqa: F401  (each registers its datasets)
from bench.data.batches import BatchSource, ShuffledBatches, check_batch_size, to_float, to_uint8
from bench.data.registry import DATASETS, DatasetSpec, Source
from bench.data.splits import ImageData, image_shape, load, presence, random_subset, resolve_root

__all__ = [
    "DATASETS",
    "BatchSource",
    "DatasetSpec",
    "ImageData",
    "ShuffledBatches",
    "Source",
    "check_batch_size",
    "image_shape",
    "load",
    "presence",
    "random_subset",
    "resolve_root",
    "to_float",
    "to_uint8",
]
