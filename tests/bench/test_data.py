import shutil

import pytest
import torch

from bench.config import DataConfig
from bench.data import ShuffledBatches, load, to_float, to_uint8
from bench.errors import ConfigError, DataError, UnknownNameError


def test_mnist_splits_from_shared_data(mnist_root, tmp_path):
    train = load(DataConfig(root=str(mnist_root)), "train", tmp_path)
    test = load(DataConfig(root=str(mnist_root)), "test", tmp_path)
    assert train.images.shape == (60000, 1, 28, 28) and train.images.dtype == torch.uint8
    assert test.images.shape == (10000, 1, 28, 28)
    assert train.labels[:8].tolist() == [5, 0, 4, 1, 9, 2, 1, 3]  # the well-known first MNIST labels
    assert torch.bincount(test.labels).tolist()[:3] == [980, 1135, 1032]
    assert not (tmp_path / "data").exists()  # nothing downloaded or unpacked


def test_missing_root_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="is not a folder"):
        load(DataConfig(root=str(tmp_path / "nowhere")), "train", tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="mnist train split not found: .*train-images-idx3-ubyte.gz"):
        load(DataConfig(root=str(tmp_path / "empty")), "train", tmp_path)


def test_corrupt_file_fails_md5(mnist_root, tmp_path):
    raw = tmp_path / "copy" / "MNIST" / "raw"
    shutil.copytree(mnist_root / "MNIST" / "raw", raw)
    data = bytearray((raw / "t10k-labels-idx1-ubyte.gz").read_bytes())
    data[-5] ^= 0xFF
    (raw / "t10k-labels-idx1-ubyte.gz").write_bytes(bytes(data))
    with pytest.raises(DataError, match="corrupt: md5"):
        load(DataConfig(root=str(tmp_path / "copy")), "test", tmp_path)


def test_unknown_dataset_and_split(tmp_path):
    with pytest.raises(UnknownNameError, match="unknown dataset 'cifar100'"):
        load(DataConfig(dataset="cifar100"), "train", tmp_path)
    with pytest.raises(DataError, match="no split 'val'"):
        load(DataConfig(), "val", tmp_path)


def test_sampler_order_is_fixed_by_seed_and_covers_the_epoch():
    images = torch.arange(100, dtype=torch.uint8).view(100, 1, 1, 1)
    a, b, c = ShuffledBatches(images, 10, 0), ShuffledBatches(images, 10, 0), ShuffledBatches(images, 10, 1)
    assert a.per_epoch == 10
    epoch = torch.cat([a(i) for i in range(10)])
    torch.testing.assert_close(epoch, torch.cat([b(i) for i in range(10)]))
    assert not torch.equal(epoch, torch.cat([c(i) for i in range(10)]))
    assert sorted(to_uint8(epoch).flatten().tolist()) == list(range(100))  # every image once per epoch
    assert not torch.equal(a(0), a(10))  # a new permutation each epoch
    torch.testing.assert_close(ShuffledBatches(images, 10, 0)(13), a(13))  # addressable by index (resume)


def test_sampler_drops_incomplete_batch_and_rejects_huge_batch():
    images = torch.zeros(25, 1, 2, 2, dtype=torch.uint8)
    assert ShuffledBatches(images, 10, 0).per_epoch == 2
    with pytest.raises(ConfigError, match="train.batch_size = .* exceeds"):
        ShuffledBatches(images, 26, 0)


def test_uint8_float_round_trip_rounds():
    u = torch.arange(256, dtype=torch.uint8)
    torch.testing.assert_close(to_uint8(to_float(u)), u, rtol=0, atol=0)
    assert to_float(u).min() == -1 and to_float(u).max() == 1
    # 0.6 of a level above level k must round up to k + 1, not truncate to k
    x = (torch.arange(255, dtype=torch.float64) + 0.6) / 127.5 - 1
    assert to_uint8(x).tolist() == list(range(1, 256))
    assert to_uint8(torch.tensor([-3.0, 3.0])).tolist() == [0, 255]
