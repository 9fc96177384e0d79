"""Scoring a model trained elsewhere: samples (folder, .npz, .npy) and generators (TorchScript,
module:function) through the run's protocol, on real MNIST; memorisation; bad inputs."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from bench.cli import app
from bench.config import load_compare_config
from bench.external import External, score_external
from bench.run import floor
from bench.tracking import Tracker, keys
from tests.conftest import FAST

N = 200  # eval.n_samples of FAST
PRIMARY = "lenet-mnist"
FIDELITY = (keys.FID, keys.IS_MEAN, keys.KID_MEAN, keys.PRECISION, keys.RECALL, keys.DENSITY, keys.COVERAGE)


def _cc(workdir: Path, *sets: str):
    return load_compare_config(None, [*FAST, f'workdir="{workdir}"', *sets])


def _floor_images(mnist, seed: int = 0) -> torch.Tensor:
    """The images the floor's first subset scores (``bench.metrics.floor``: randperm seeded with the seed)."""
    _, train, _ = mnist
    idx = torch.randperm(train.images.shape[0], generator=torch.Generator().manual_seed(seed))[:N]
    return train.images[idx]


def _write_pngs(images: torch.Tensor, folder: Path) -> Path:
    from PIL import Image

    folder.mkdir(parents=True)
    for i, im in enumerate(images):
        Image.fromarray(im[0].numpy(), mode="L").save(folder / f"{i:05d}.png")
    return folder


def _fidelity(metrics: dict) -> dict:
    return {m: metrics[keys.eval_key(PRIMARY, m)] for m in FIDELITY}


def test_samples_in_every_format_score_exactly_as_the_floor(mnist, workdir, tmp_path):
    """The floor's own images written as .npz (uint8 NHWC, float in [0, 1] and [-1, 1]), .npy and a folder
    of PNGs score exactly as the floor (one subset, the same seed): the same protocol, whatever the format."""
    cc = _cc(workdir, "eval.floor_subsets=1")
    expected = _fidelity(floor(cc).metrics)
    images = _floor_images(mnist)
    u8 = images.permute(0, 2, 3, 1).numpy()  # NHWC, as most code writes them
    np.savez(tmp_path / "u8.npz", x=u8)
    np.savez(tmp_path / "f01.npz", x=images.numpy().astype(np.float32) / 255.0)
    np.savez(tmp_path / "f11.npz", x=images.numpy().astype(np.float32) / 127.5 - 1.0)
    np.save(tmp_path / "u8.npy", images[:, 0].numpy())  # (N, H, W)
    sources = {
        "u8.npz": None,
        "f01.npz": "0,1",
        "f11.npz": "-1,1",
        "u8.npy": None,
        "folder": None,
    }
    _write_pngs(images, tmp_path / "folder")
    for i, (name, value_range) in enumerate(sources.items()):
        result, protocols = score_external(
            cc, External(f"ext-{i}", samples=str(tmp_path / name), value_range=value_range)
        )
        assert _fidelity(result.metrics) == expected, name
        assert "samples read from" in protocols[0].line()
    runs = Tracker(workdir).search_runs([cc.experiment])
    ext = [r for r in runs if r["tags"].get(keys.TAG_KIND) == keys.KIND_EXTERNAL]
    assert len(ext) == len(sources) and all(len(r["tags"][keys.TAG_EXTERNAL_SHA256]) == 64 for r in ext)


class _Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(3)
        self.z_dim = 8
        self.net = torch.nn.Linear(8, 28 * 28)

    def forward(self, z):
        return torch.tanh(self.net(z)).view(-1, 1, 28, 28)


def test_a_torchscript_generator_scores_as_the_samples_it_wrote(workdir, tmp_path):
    """ganbench draws z as for its own runs (N(0, I) from a CPU generator seeded with the run seed, in one
    draw): the samples a user writes with that z score exactly as the generator ganbench calls."""
    g = _Tiny().eval()
    path = tmp_path / "g.pt"
    torch.jit.save(torch.jit.script(g), str(path))
    cc = _cc(workdir)
    from_generator, protocols = score_external(cc, External("tiny-g", generator=str(path), z_dim=8))
    z = torch.randn(N, 8, generator=torch.Generator().manual_seed(cc.seeds[0]))
    with torch.no_grad():
        images = ((g(z) + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
    _write_pngs(images, tmp_path / "written")
    from_folder, _ = score_external(cc, External("tiny-folder", samples=str(tmp_path / "written")))
    assert _fidelity(from_generator.metrics) == _fidelity(from_folder.metrics)
    assert "generator" in protocols[0].line() and "z from the run's seed" in protocols[0].line()


def test_a_copying_generator_is_caught_and_test_images_are_not(mnist, workdir, tmp_path):
    """A module:function "generator" returning training images: copy rate ~1, NN ratio >> 1 and a gallery of
    exact matches; MNIST test images: the held-out copy rate the protocol line states."""
    from bench.data import random_subset
    from bench.data.splits import subset_indices

    _, train, test = mnist
    searched = random_subset(train, 5000, 0)[0]  # the training images memorisation searches (reference_seed 0)
    np.save(tmp_path / "train_images.npy", searched.numpy())
    (tmp_path / "copier.py").write_text(
        textwrap.dedent(f"""
        import numpy as np, torch

        class Copier(torch.nn.Module):
            z_dim = 4
            def __init__(self):
                super().__init__()
                self.register_buffer("x", torch.from_numpy(np.load({str(tmp_path / "train_images.npy")!r})))
            def forward(self, z):  # the i-th training image for each z, in [-1, 1]
                i = (z[:, 0].abs() * 1e6).long() % self.x.shape[0]
                return self.x[i].float() / 127.5 - 1

        def load():
            return Copier()
        """)
    )
    cc = _cc(workdir)
    copied, protocols = score_external(cc, External("copier", generator=f"{tmp_path / 'copier.py'}:load"))
    m = copied.metrics
    assert m[keys.eval_key(PRIMARY, keys.COPY_RATE)] > 0.95
    assert m[keys.eval_key(PRIMARY, keys.NN_RATIO)] > 100
    tracker = Tracker(workdir)
    nearest = tracker.download_artifact(copied.run_id, "memorisation/nearest.json", tmp_path / "dl")
    pairs = json.loads(Path(nearest).read_text())["pairs"]
    assert len(pairs) == 16 and all(p["distance"] < 1e-3 for p in pairs)
    searched_idx = set(subset_indices(train.images.shape[0], 5000, 0).tolist())
    assert all(p["train_index"] in searched_idx for p in pairs)  # split indices, not rows of the subset
    assert tracker.download_artifact(copied.run_id, "memorisation/nearest.png", tmp_path / "dl2") is not None

    np.savez(tmp_path / "test.npz", x=test.images[:N].numpy())
    held, protocols = score_external(cc, External("test-images", samples=str(tmp_path / "test.npz")))
    baseline = held.metrics[keys.eval_key(PRIMARY, keys.HELDOUT_COPY_RATE)]
    assert f"copy rate {baseline:.3f}" in protocols[0].line()
    rate = held.metrics[keys.eval_key(PRIMARY, keys.COPY_RATE)]
    assert abs(rate - baseline) < 4 * (baseline * (1 - baseline) / N) ** 0.5  # binomial, 4 sigma
    assert 0.7 < held.metrics[keys.eval_key(PRIMARY, keys.NN_RATIO)] < 1.4


def test_conditional_samples_get_intra_fid(mnist, workdir, tmp_path):
    """A folder with one sub-folder per class (named as the dataset's classes) is class-conditional:
    intra-FID is computed from the labels the folders give."""
    _, _, test = mnist
    for c in range(10):
        _write_pngs(test.images[test.labels == c][:20], tmp_path / "cond" / test.classes[c])
    cc = _cc(workdir, "eval.usefulness=false")
    result, _ = score_external(cc, External("cond", samples=str(tmp_path / "cond"), conditional=True))
    assert keys.eval_key(PRIMARY, keys.INTRA_FID) in result.metrics


def _bad(tmp_path: Path) -> dict[str, tuple[list[str], str]]:
    x = np.zeros((N, 28, 28), np.uint8)
    np.savez(tmp_path / "shape.npz", x=np.zeros((N, 32, 32), np.uint8))
    np.savez(tmp_path / "rgb.npz", x=np.zeros((N, 3, 28, 28), np.uint8))
    np.savez(tmp_path / "range.npz", x=np.full((N, 28, 28), 2.0, np.float32))
    np.savez(tmp_path / "int.npz", x=x.astype(np.int32))
    np.savez(tmp_path / "few.npz", x=x[:10])
    np.savez(tmp_path / "nolabels.npz", x=x)
    np.savez(tmp_path / "badlabels.npz", x=x, y=np.full(N, 10))
    np.savez(tmp_path / "other.npz", images=x)
    (tmp_path / "garbage.npz").write_bytes(b"not a zip")
    (tmp_path / "notscript.pt").write_bytes(b"not torchscript")
    colour = tmp_path / "colour"
    colour.mkdir()
    from PIL import Image

    Image.fromarray(np.dstack([np.zeros((28, 28), np.uint8), np.full((28, 28), 255, np.uint8), x[0]])).save(
        colour / "a.png"
    )
    return {
        "shape": (["--samples", "shape.npz"], "error: shape.npz:x has shape (200, 32, 32); expected"),
        "channels": (["--samples", "rgb.npz"], "error: rgb.npz:x has shape (200, 3, 28, 28): 3 channels, the dataset has 1"),  # noqa: E501
        "range": (["--samples", "range.npz", "--range", "0,1"], "error: range.npz:x has values in [2, 2], outside"),
        "no range": (["--samples", "range.npz"], "error: range.npz:x is float32: say its range with --range"),
        "dtype": (["--samples", "int.npz"], "error: int.npz:x has dtype int32; expected uint8"),
        "too few": (["--samples", "few.npz"], "error: few.npz holds 10 images; eval.n_samples = 200 needs as many"),  # noqa: E501
        "no labels": (["--samples", "nolabels.npz", "--conditional"], "error: --conditional: nolabels.npz has no labels"),  # noqa: E501
        "bad labels": (["--samples", "badlabels.npz"], "error: badlabels.npz:y has labels in [10, 10]; expected [0, 10)"),  # noqa: E501
        "no x": (["--samples", "other.npz"], "error: other.npz has arrays images; expected x"),
        "unreadable": (["--samples", "garbage.npz"], "error: garbage.npz cannot be read as a NumPy .npz file"),
        "colour": (["--samples", "colour"], "error: colour/a.png is a colour image; the dataset is greyscale"),
        "missing": (["--samples", "nothing.npz"], "error: --samples 'nothing.npz' does not exist"),
        "torchscript": (["--generator", "notscript.pt", "--z-dim", "8"], "error: --generator 'notscript.pt' cannot be loaded as TorchScript"),  # noqa: E501
        "factory": (["--generator", "nosuchmodule:load"], "error: --generator 'nosuchmodule:load' cannot be imported"),
        "name": (["--samples", "nolabels.npz", "--name", "dcgan"], "error: --name 'dcgan' is a ganbench architecture's row"),  # noqa: E501
        "both": (["--samples", "nolabels.npz", "--generator", "g.pt"], "error: give one of RUN_ID/CHECKPOINT"),
    }  # fmt: skip


def test_every_bad_input_family_exits_2_with_one_line_and_writes_nothing(workdir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    for family, (args, message) in _bad(tmp_path).items():
        r = runner.invoke(app, ["eval", *args, "--workdir", str(workdir), *[a for s in FAST for a in ("--set", s)]])
        assert r.exit_code == 2, (family, r.output)
        assert r.stderr.startswith(message), (family, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1, (family, r.stderr)
        assert not (workdir / "mlflow.db").exists(), family  # nothing logged


def test_dinov2_runs_through_torch_fidelity_with_a_fake_hub_model(mnist, workdir, tmp_path, monkeypatch):
    """torch-fidelity's DINOv2 extractor, its model from torch hub's cache replaced by a fake of the same
    interface (no weights can be downloaded here): FD_DINOv2 is logged and headed so in the report, and the
    report says whether the two feature spaces agree. Without the cache, the error names the hub folder."""
    from reports.build import build_report

    hub = tmp_path / "torch" / "hub"
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    np.savez(tmp_path / "x.npz", x=mnist[2].images[:N].numpy())
    sets = [a for s in FAST for a in ("--set", s)]
    args = ["eval", "--samples", str(tmp_path / "x.npz"), "--extractor", "dinov2-vit-s-14", "--workdir", str(workdir)]
    r = CliRunner().invoke(app, [*args, *sets])
    assert r.exit_code == 2 and f"{hub}/facebookresearch_dinov2_main" in r.stderr, r.stderr
    (hub / "facebookresearch_dinov2_main").mkdir(parents=True)
    (hub / "checkpoints").mkdir()
    (hub / "checkpoints" / "dinov2_vits14_pretrain.pth").write_bytes(b"")
    (hub / "facebookresearch_dinov2_main" / "hubconf.py").write_text(
        textwrap.dedent("""
        import torch
        dependencies = ["torch"]

        class Fake(torch.nn.Module):  # DINOv2's interface: (B, 3, 224, 224) normalised -> (B, 384)
            def __init__(self):
                super().__init__()
                self.proj = torch.nn.Parameter(torch.randn(768, 384, generator=torch.Generator().manual_seed(0)))
            def forward(self, x):
                return torch.nn.functional.adaptive_avg_pool2d(x, 16).flatten(1) @ self.proj

        def dinov2_vits14(**kw):
            return Fake()
        """)
    )
    _, train, test = mnist
    cc = _cc(workdir, "eval.n_reference=300", 'eval.extractors.dinov2-vit-s-14.use="on"')
    for i, images in enumerate((test.images[:N], train.images[:N], (train.images[:N] // 4))):
        np.savez(tmp_path / f"s{i}.npz", x=images.numpy())
        result, protocols = score_external(cc, External(f"model-{i}", samples=str(tmp_path / f"s{i}.npz")))
        assert keys.eval_key("dinov2-vit-s-14", keys.FID) in result.metrics
        assert keys.eval_key("dinov2-vit-s-14", keys.IS_MEAN) not in result.metrics  # no logits, no IS
    out = build_report([cc.experiment], tmp_path / "report", workdir, formats=("md",))
    text = (out / "report.md").read_text()
    assert "FD_DINOv2 (DINOv2-S) ↓" in text and "model-0 (external)" in text
    assert "## Agreement between feature spaces" in text and "## Memorisation" in text


def test_kendall_tau_and_the_swapped_pairs_on_constructed_rankings():
    import pandas as pd

    from reports.scoring import agreement

    a = pd.Series({"x": 1.0, "y": 2.0, "z": 3.0, "w": 4.0})
    same = agreement({"A": a, "B": a * 10})
    assert same["tau"].iloc[0] == pytest.approx(1.0) and same["swapped"].iloc[0] == []
    one_swap = agreement({"A": a, "B": pd.Series({"x": 1.0, "y": 3.0, "z": 2.0, "w": 4.0})})
    assert one_swap["tau"].iloc[0] == pytest.approx((5 - 1) / 6)  # 5 concordant, 1 discordant of 6 pairs
    assert one_swap["swapped"].iloc[0] == ["y vs z"]
    reversed_ = agreement({"A": a, "B": -a, "C": a.drop("w")})
    assert reversed_["tau"].iloc[0] == pytest.approx(-1.0) and reversed_["n"].tolist() == [4, 3, 3]


def test_nearest_neighbours_are_exact_in_chunks():
    from bench.metrics.memorisation import memorisation, nearest

    g = torch.Generator().manual_seed(0)
    base, queries = torch.randn(500, 16, generator=g), torch.randn(70, 16, generator=g)
    d, i = nearest(queries, base, chunk=16)
    brute = torch.cdist(queries.double(), base.double())
    assert torch.equal(i, brute.argmin(1)) and torch.allclose(d, brute.min(1).values)
    own, j = nearest(base[:40], base, chunk=7, self_index=torch.arange(40))
    brute_own = torch.cdist(base[:40].double(), base.double()).fill_diagonal_(float("inf"))
    assert torch.equal(j, brute_own.argmin(1)) and torch.allclose(own, brute_own.min(1).values)
    copies = memorisation(base[:50], base, torch.randn(60, 16, generator=g))
    assert copies.copy_rate == 1.0 and all(p[2] == 0.0 for p in copies.gallery)


def test_float_samples_are_quantised_exactly_as_ganbench_quantises_its_own():
    """Any float in [-1, 1] becomes the byte ``bench.data.to_uint8`` makes of it (the TorchScript generator
    and the samples it wrote give identical numbers for every tanh output, not by luck); [0, 1] floats of
    uint8 images come back as those bytes."""
    from bench.data import to_uint8
    from bench.data.samples import to_images

    x = torch.rand(500, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1
    x[0, 0, 0, :4] = torch.tensor([-1.0, 1.0, 0.0, 1 / 255 - 1])
    assert torch.equal(to_images(x, (1, 28, 28), (-1.0, 1.0), "x"), to_uint8(x))
    u8 = torch.randint(0, 256, (50, 28, 28, 1), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    back = to_images((u8.float() / 255).numpy(), (1, 28, 28), (0.0, 1.0), "x")
    assert torch.equal(back, u8.permute(0, 3, 1, 2))


@pytest.mark.parametrize(
    "x, y, message",
    [
        (np.zeros((4, 28, 28), ">f4"), None, None),  # big-endian floats are fine
        (np.zeros((4, 28, 28), "U1"), None, "x has dtype <U1; expected uint8"),
        (np.zeros((4, 28, 28), np.uint16), None, "x has dtype uint16; expected uint8"),
        (np.zeros((4, 28, 28), np.uint8), np.zeros(4, np.uint64), None),  # uint64 labels are fine
        (np.zeros((4, 28, 28), np.uint8), np.zeros(4, np.float32), "y has dtype float32; expected integer"),
    ],
)
def test_array_dtypes_are_checked_before_torch_sees_them(x, y, message, tmp_path):
    from bench.data.samples import read_samples
    from bench.errors import DataError

    np.savez(tmp_path / "s.npz", x=x, **({"y": y} if y is not None else {}))
    rng = "-1,1" if x.dtype.kind == "f" else None
    if message is None:
        found = read_samples(tmp_path / "s.npz", (1, 28, 28), tuple("0123456789"), rng)
        assert found.images.dtype == torch.uint8 and (y is None or found.labels.dtype == torch.int64)
    else:
        with pytest.raises(DataError, match=message):
            read_samples(tmp_path / "s.npz", (1, 28, 28), tuple("0123456789"), rng)


def test_sixteen_bit_and_hidden_images_in_a_folder(tmp_path):
    from PIL import Image

    from bench.data.samples import read_samples
    from bench.errors import DataError

    (tmp_path / "ok" / ".ipynb_checkpoints").mkdir(parents=True)
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(tmp_path / "ok" / "a.png")
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(tmp_path / "ok" / ".ipynb_checkpoints" / "a.png")
    assert read_samples(tmp_path / "ok", (1, 28, 28)).images.shape[0] == 1
    (tmp_path / "deep").mkdir()
    Image.fromarray(np.full((28, 28), 320, np.uint16)).save(tmp_path / "deep" / "a.png")
    with pytest.raises(DataError, match="16-bit or float"):
        read_samples(tmp_path / "deep", (1, 28, 28))


def test_the_plain_pytorch_example_writes_samples_ganbench_scores(mnist_root, workdir, tmp_path):
    """examples/plain_dcgan.py (no ganbench import) for a few steps: its .npz and TorchScript generator are
    accepted and give the same numbers (the z it draws is the one ganbench draws from the run seed)."""
    import subprocess
    import sys

    script = Path(__file__).parents[2] / "examples" / "plain_dcgan.py"
    out, g = tmp_path / "plain.npz", tmp_path / "plain.pt"
    args = ["--data", str(mnist_root), "--epochs", "0.01", "--n-samples", str(N), "--out", str(out)]
    done = subprocess.run(
        [sys.executable, str(script), *args, "--generator-out", str(g)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "import bench" not in script.read_text() and "from bench" not in script.read_text()
    cc = _cc(workdir)
    from_samples, _ = score_external(cc, External("plain", samples=str(out)))
    from_generator, _ = score_external(cc, External("plain-g", generator=str(g)))
    assert _fidelity(from_samples.metrics) == _fidelity(from_generator.metrics)


def test_floats_that_fill_little_of_their_range_are_warned_about(tmp_path):
    from bench.data.samples import SamplesWarning, to_images

    x = np.random.default_rng(0).uniform(0, 1, (4, 28, 28)).astype(np.float32)
    with pytest.warns(SamplesWarning, match=r"spans only \[.*\] of --range -1,1"):
        to_images(x, (1, 28, 28), (-1.0, 1.0), "x")
