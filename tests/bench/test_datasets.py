"""The dataset family: real Fashion-MNIST / EMNIST letters / KMNIST, CIFAR-10 and `folder` on files the tests
write, the shipped per-dataset extractors, and a short run on every dataset with every architecture."""

import hashlib
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import bench.data
from bench.cli import app
from bench.config import CompareConfig, DataConfig, EvalConfig, TrainConfig, default_extractor
from bench.data import DATASETS, load, presence
from bench.errors import DataError
from bench.metrics.extractors import EXTRACTORS, SHIPPED, WEIGHTS_DIR, locate_weights, sha256_of
from bench.metrics.lenet import load_lenet
from bench.metrics.train_lenet import accuracy
from bench.run import train
from bench.tracking import Tracker

runner = CliRunner()
BUILT_IN = ("vanilla", "dcgan", "wgan-gp", "sngan")


def _shipped_model(dataset: str):
    spec = EXTRACTORS.get(f"lenet-{dataset}")
    c, s, _ = spec.image_shape
    return load_lenet(locate_weights(f"lenet-{dataset}", None, None, True), c, spec.num_classes, s)


# ---- real data ------------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("dataset", "train_n", "test_n", "classes", "first"),
    [
        ("fashion-mnist", 60000, 10000, 10, "T-shirt/top"),
        ("emnist-letters", 124800, 20800, 26, "A"),
    ],
)
def test_real_dataset_shapes_classes_and_checksums(mnist_root, tmp_path, dataset, train_n, test_n, classes, first):
    tr, te = (load(DataConfig(dataset=dataset), s, tmp_path) for s in ("train", "test"))
    assert tr.images.shape == (train_n, 1, 28, 28) and te.images.shape == (test_n, 1, 28, 28)
    assert tr.images.dtype == torch.uint8 and tr.labels.dtype == torch.int64
    assert tr.num_classes == classes and tr.classes[0] == first
    assert sorted(torch.unique(te.labels).tolist()) == list(range(classes))  # labels 0..K-1 (letters: 1..26 - 1)
    assert presence(dataset, mnist_root) == "yes"
    assert not (tmp_path / "data").exists()  # read in place, nothing downloaded or unpacked


@pytest.mark.slow
def test_emnist_letters_are_upright_and_labelled_as_the_mapping_says(mnist_root, tmp_path):
    """The official files are stored transposed. Checked without ganbench's own EMNIST classifier: the MNIST
    classifier reads the letters that look like digits (Z as 2, S as 5) as those digits only if the images are
    the right way round; and the labels follow the official mapping (label 1 = ASCII 65 'A')."""
    test = load(DataConfig(dataset="emnist-letters"), "test", tmp_path)
    mapping = (mnist_root / "EMNIST" / "raw" / "emnist-letters-mapping.txt").read_text().split("\n")
    for line in filter(None, mapping):
        label, upper, _ = map(int, line.split())
        assert test.classes[label - 1] == chr(upper)
    mnist = _shipped_model("mnist")
    for letter, digit in (("Z", 2), ("S", 5)):
        x = test.images[test.labels == test.classes.index(letter)][:300].float() / 255
        with torch.no_grad():
            upright = (mnist(x).argmax(1) == digit).float().mean().item()
            transposed = (mnist(x.transpose(-1, -2)).argmax(1) == digit).float().mean().item()
        assert upright > 0.85 and transposed < 0.1, (letter, upright, transposed)
    # and the shipped letters classifier names a few test images (one per class) as the mapping does
    letters = _shipped_model("emnist-letters")
    firsts = torch.stack([test.images[test.labels == y][0] for y in range(26)])
    with torch.no_grad():
        predicted = letters(firsts.float() / 255).argmax(1)
    assert sum(test.classes[p] == chr(65 + y) for y, p in enumerate(predicted.tolist())) >= 24


@pytest.mark.slow
@pytest.mark.parametrize(("dataset", "minimum"), [("fashion-mnist", 0.91), ("emnist-letters", 0.93)])
def test_shipped_extractors_reach_their_accuracy_and_are_pinned(tmp_path, dataset, minimum):
    test = load(DataConfig(dataset=dataset), "test", tmp_path)
    assert accuracy(_shipped_model(dataset), test.images, test.labels) >= minimum
    path = WEIGHTS_DIR / SHIPPED[dataset].file
    assert sha256_of(path) == SHIPPED[dataset].sha256 and path.stat().st_size < 2_000_000
    assert default_extractor(dataset) == f"lenet-{dataset}"
    assert EXTRACTORS.get(default_extractor(dataset)).dataset == dataset


def test_every_dataset_has_a_default_extractor_that_is_registered():
    for name in DATASETS.names():
        assert default_extractor(name) in EXTRACTORS.names()


def test_kmnist_test_split_loads_and_the_missing_train_split_is_one_line(mnist_root, tmp_path, workdir):
    test = load(DataConfig(dataset="kmnist"), "test", tmp_path)
    assert test.images.shape == (10000, 1, 28, 28)
    assert torch.bincount(test.labels).tolist() == [1000] * 10
    assert presence("kmnist", mnist_root) == "test only"
    r = runner.invoke(app, ["compare", "--dataset", "kmnist", "--steps", "1", "--workdir", str(workdir)])
    assert r.exit_code == 2
    line = r.stderr.strip()
    assert "\n" not in line and line.startswith("error: kmnist train split not found:")
    assert str(mnist_root / "KMNIST" / "raw" / "train-images-idx3-ubyte.gz") in line and "KMNIST/raw/" in line
    assert not workdir.exists()


# ---- CIFAR-10 and folder, on files the tests write --------------------------------------------------------------


def _write_cifar(root: Path, n_per_batch: int = 20) -> tuple[dict[str, list[tuple[str, str]]], np.ndarray]:
    """CIFAR-10's python format (pickled dicts of ``data`` (N, 3072) uint8, ``labels``; ``batches.meta`` with
    the class names), with our md5 list."""
    folder = root / bench.data.cifar.CIFAR_FOLDER
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    files: dict[str, list[tuple[str, str]]] = {"train": [], "test": []}
    first = None
    for split, names in (("train", [f"data_batch_{i}" for i in range(1, 6)]), ("test", ["test_batch"])):
        for name in names:
            data = rng.integers(0, 256, size=(n_per_batch, 3072), dtype=np.uint8)
            labels = [int(x) for x in rng.integers(0, 10, size=n_per_batch)]
            raw = pickle.dumps({"batch_label": name, "labels": labels, "data": data})
            (folder / name).write_bytes(raw)
            files[split].append((name, hashlib.md5(raw).hexdigest()))
            first = data if first is None else first
    meta = pickle.dumps({"label_names": list(bench.data.cifar.CIFAR_CLASSES)})
    (folder / "batches.meta").write_bytes(meta)
    files["meta"] = {"filename": "batches.meta", "key": "label_names", "md5": hashlib.md5(meta).hexdigest()}
    return files, first


@pytest.fixture
def cifar_root(tmp_path, monkeypatch):
    import torchvision

    files, first = _write_cifar(tmp_path / "cifar-data")
    cifar10 = torchvision.datasets.CIFAR10  # the lists torchvision's reader checks, as ganbench's loader does
    monkeypatch.setattr(cifar10, "train_list", [list(x) for x in files["train"]])
    monkeypatch.setattr(cifar10, "test_list", [list(x) for x in files["test"]])
    monkeypatch.setattr(cifar10, "meta", files["meta"])
    bench.data.cifar._load_cifar10.cache_clear()
    yield tmp_path / "cifar-data", first
    bench.data.cifar._load_cifar10.cache_clear()


def test_cifar10_reads_torchvision_batches_in_chw_order(cifar_root, tmp_path):
    root, first = cifar_root
    train = load(DataConfig(dataset="cifar10", root=str(root)), "train", tmp_path)
    test = load(DataConfig(dataset="cifar10", root=str(root)), "test", tmp_path)
    assert train.images.shape == (100, 3, 32, 32) and test.images.shape == (20, 3, 32, 32)
    # the row layout of CIFAR's files: 1024 red, then 1024 green, then 1024 blue values, row-major
    assert train.images[0, 1, 2, 3].item() == first[0, 1024 + 2 * 32 + 3]
    assert train.classes[0] == "airplane" and presence("cifar10", root) == "yes"


def test_cifar10_corrupt_batch_is_a_data_error(cifar_root, tmp_path):
    root, _ = cifar_root
    path = root / bench.data.cifar.CIFAR_FOLDER / "test_batch"
    path.write_bytes(path.read_bytes()[:-1] + b"x")
    with pytest.raises(DataError, match="test_batch is corrupt: md5"):
        load(DataConfig(dataset="cifar10", root=str(root)), "test", tmp_path)


def _write_images(folder: Path, n: int, mode: str, size: tuple[int, int], suffix: str = ".png") -> None:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(len(str(folder)))
    for i in range(n):
        shape = (size[1], size[0], 3) if mode == "RGB" else (size[1], size[0])
        Image.fromarray(rng.integers(0, 256, size=shape, dtype=np.uint8), mode).save(folder / f"{i:03d}{suffix}")


def test_folder_of_class_subfolders_rgb_resized(tmp_path):
    root = tmp_path / "pets"
    _write_images(root / "cat", 10, "RGB", (48, 40))
    _write_images(root / "dog", 10, "RGB", (90, 70), ".jpg")
    (root / "notes.txt").write_text("not an image")
    cfg = DataConfig(dataset="folder", root=str(root), image_size=32)
    train, test = load(cfg, "train", tmp_path), load(cfg, "test", tmp_path)
    assert train.images.shape == (18, 3, 32, 32) and test.images.shape == (2, 3, 32, 32)  # every 10th image
    assert train.classes == ("cat", "dog") and test.labels.tolist() == [0, 1]


def test_folder_flat_grey_and_its_own_train_test_split(tmp_path):
    flat = tmp_path / "flat"
    _write_images(flat, 12, "L", (28, 28))
    cfg = DataConfig(dataset="folder", root=str(flat), image_size=28, channels=1)
    train = load(cfg, "train", tmp_path)
    assert train.images.shape == (11, 1, 28, 28) and train.classes == ("images",)
    split = tmp_path / "split"
    _write_images(split / "train" / "a", 4, "RGB", (64, 64))
    _write_images(split / "test" / "a", 3, "RGB", (64, 64))
    cfg = DataConfig(dataset="folder", root=str(split))
    assert load(cfg, "test", tmp_path).images.shape == (3, 3, 64, 64)  # defaults: 64x64 RGB
    with pytest.raises(DataError, match="folder' needs data.root"):
        load(DataConfig(dataset="folder"), "train", tmp_path)


def test_another_datasets_classifier_or_an_unbuildable_size_is_refused_up_front(mnist_root, workdir):
    r = runner.invoke(app, ["compare", "--dataset", "fashion-mnist", "--extractor", "lenet-mnist", "--steps", "1",
                            "--workdir", str(workdir)])  # fmt: skip
    assert r.exit_code == 2 and "lenet-mnist' is the classifier of mnist, not of fashion-mnist" in r.stderr
    r = runner.invoke(app, ["compare", "dcgan", "--set", "data.image_size=36", "--set", "eval.enabled=false",
                            "--steps", "1", "--workdir", str(workdir)])  # fmt: skip
    assert r.exit_code == 2 and "dcgan cannot be built for mnist images (1, 36, 36)" in r.stderr
    r = runner.invoke(app, ["compare", "dcgan", "--set", "data.image_size=32", "--steps", "1",
                            "--workdir", str(workdir)])  # fmt: skip
    assert r.exit_code == 2 and "use inception-v3-compat (any size)" in r.stderr
    flat = workdir.parent / "flat"
    _write_images(flat, 12, "L", (28, 28))  # one class: nothing to condition on
    small = ["--set", "eval.enabled=false", "--set", "train.batch_size=4", "--workdir", str(workdir)]
    r = runner.invoke(app, ["compare", "cgan", "--dataset", "folder", "--data-root", str(flat), "--steps", "1",
                            *small])  # fmt: skip
    assert r.exit_code == 2 and "cgan is class-conditional and needs a labelled dataset" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    r = runner.invoke(app, ["compare", "dcgan", "cgan", "--dataset", "folder", "--data-root", str(flat), "--steps",
                            "1", *small])  # fmt: skip
    assert r.exit_code == 2 and "cgan cannot be built" in r.stderr  # refused before dcgan trains
    assert not workdir.exists()


def test_any_dataset_resizes_and_converts(mnist_root, tmp_path):
    x = load(DataConfig(image_size=32, channels=3), "test", tmp_path).images
    assert x.shape == (10000, 3, 32, 32) and torch.equal(x[:, 0], x[:, 2])


# ---- a short run on every dataset with every architecture -------------------------------------------------------


@pytest.fixture
def datasets_root(mnist_root, cifar_root, tmp_path):
    folder = tmp_path / "imgs"
    _write_images(folder / "x", 40, "RGB", (64, 64))
    return {"cifar10": str(cifar_root[0]), "folder": str(folder)}


def _two_steps(datasets_root, workdir, dataset, arch) -> DataConfig:
    """Train ``arch`` for 2 steps on ``dataset`` without evaluation; returns its DataConfig."""
    data = DataConfig(dataset=dataset, root=datasets_root.get(dataset))
    cc = CompareConfig(
        archs=(arch,), workdir=str(workdir), data=data, eval=EvalConfig(enabled=False),
        train=TrainConfig(steps=2, epochs=None, batch_size=8, log_every=1, warmup_steps=1, sample_every=2),
    )  # fmt: skip
    result = train(cc.run(arch, 0), Tracker(str(workdir)))
    assert result.status == "FINISHED", result.error
    return data


@pytest.mark.slow
@pytest.mark.parametrize("arch", BUILT_IN)
@pytest.mark.parametrize("dataset", ["mnist", "fashion-mnist", "emnist-letters", "cifar10", "folder"])
def test_two_steps_on_every_dataset(datasets_root, workdir, dataset, arch):
    data = _two_steps(datasets_root, workdir, dataset, arch)
    from PIL import Image

    size = {"cifar10": 32, "folder": 64}.get(dataset, 28)
    assert load(data, "train", workdir).image_shape == ({"cifar10": 3, "folder": 3}.get(dataset, 1), size, size)
    grid = next(workdir.rglob("final.png"))  # 8 x 8 samples of the dataset's shape, 2 px apart
    assert Image.open(grid).size == (8 * (size + 2) + 2, 8 * (size + 2) + 2)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("dataset", "arch"),
    [(d, a) for d in ("mnist", "emnist-letters", "cifar10") for a in ("cgan", "acgan", "sngan-projection")]
    + [("stacked-mnist", "vanilla"), ("stacked-mnist", "dcgan")],
)
def test_two_steps_of_conditional_variants_on_labelled_datasets(datasets_root, workdir, dataset, arch):
    """Conditional variants on every labelled dataset (a grid row per class: 10 rows of 10, or the 26 letters
    in rows of 8); stacked-mnist with the unconditional variants, as its comparison runs them."""
    from PIL import Image

    conditional = dataset != "stacked-mnist"
    _two_steps(datasets_root, workdir, dataset, arch)
    size = 32 if dataset == "cifar10" else 28
    rows, cols = {"emnist-letters": (26, 8), "stacked-mnist": (8, 8)}.get(dataset, (10, 10))
    width, height = Image.open(next(workdir.rglob("final.png"))).size
    assert height == rows * (size + 2) + 2
    assert width > cols * (size + 2) + 2 if conditional else width == cols * (size + 2) + 2  # names at the left


def test_extractor_train_writes_weights_that_every_command_then_finds(cifar_root, workdir):
    """`ganbench extractor train` on a dataset without shipped weights writes them into the workspace, with
    their sha256; the evaluation then finds them there and records their sha256 in the protocol."""
    root, _ = cifar_root
    before = runner.invoke(app, ["eval", "--real", "--dataset", "cifar10", "--data-root", str(root),
                                 "--workdir", str(workdir), "--n-samples", "20", "--set", "eval.kid_subset_size=10",
                                 "--set", "eval.prc_neighborhood=2"])  # fmt: skip
    assert before.exit_code == 2 and "ganbench extractor train --dataset cifar10" in before.stderr
    assert "inception-v3-compat" in before.stderr  # the other way for RGB data
    r = runner.invoke(app, ["extractor", "train", "--dataset", "cifar10", "--epochs", "1",
                            "--data-root", str(root), "--workdir", str(workdir)])  # fmt: skip
    assert r.exit_code == 0, r.output
    weights = workdir / "extractors" / "lenet-cifar10.pt"
    assert weights.is_file() and f"sha256 {sha256_of(weights)}" in r.output and "test accuracy" in r.output
    after = runner.invoke(app, ["eval", "--real", "--dataset", "cifar10", "--data-root", str(root),
                                "--workdir", str(workdir), "--n-samples", "20", "--set", "eval.kid_subset_size=10",
                                "--set", "eval.prc_neighborhood=2", "--set", "eval.floor_subsets=2"])  # fmt: skip
    assert after.exit_code == 0, after.output
    assert "eval/lenet-cifar10/fid" in after.output
    runs = Tracker(str(workdir)).search_runs(["cifar10-compare"])
    assert any(sha256_of(weights)[:12] in v for r in runs for k, v in r["tags"].items() if "protocol" in k)
