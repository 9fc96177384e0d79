import pickle
import re

import pytest
import torch

from architectures import LOSSES, build_gan
from architectures.losses import LossSpec
from bench import checkpoint
from bench.config import load_compare_config
from bench.data import ShuffledBatches
from bench.errors import CheckpointError, TrainingDiverged
from bench.harness import seed_everything, total_steps
from bench.hooks import Checkpointer, Hook, NaNGuard
from bench.run import config_from_checkpoint, train
from bench.trainer import Trainer, fit

CPU = torch.device("cpu")
IMAGES = torch.randint(0, 256, (96, 1, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(7))


def _cfg(tmp_path, *sets, arch="dummy"):
    base = [f'archs=["{arch}"]', "train.batch_size=8", "train.warmup_steps=1", f'workdir="{tmp_path}"']
    return load_compare_config(None, [*base, *sets]).run(arch, 0)


def _fit(cfg, hooks=(), resume=None):
    seed_everything(cfg.seed)
    gan = build_gan(cfg.arch, cfg.model, (1, 28, 28))
    result = fit(gan, ShuffledBatches(IMAGES, cfg.train.batch_size, cfg.seed), cfg, CPU, hooks, resume=resume)
    return gan, result


class Recorder(Hook):
    def __init__(self):
        self.events, self.steps = [], []

    def on_fit_start(self, t):
        self.events.append(("start", t.step))

    def on_step_end(self, t, out):
        self.steps.append(out.step)

    def on_fit_end(self, t):
        self.events.append(("end", t.step))


def test_step_budget_and_hook_order(tmp_path):
    rec = Recorder()
    _, result = _fit(_cfg(tmp_path, "train.steps=5"), [rec])
    assert rec.events == [("start", 0), ("end", 5)]
    assert rec.steps == [1, 2, 3, 4, 5]
    assert (result.steps, result.d_steps, result.stop_reason) == (5, 5, "budget")
    assert result.timing.steps_timed == 4  # one warm-up step excluded
    assert result.timing.ms_per_step_p50 > 0 and result.timing.img_per_s > 0


def test_epoch_budget_counts_discriminator_batches(tmp_path):
    cfg = _cfg(tmp_path, "train.epochs=2", "model.dummy.n_critic=3")
    # 96 images / batch 8 = 12 batches per epoch; 2 epochs = 24 critic steps = 8 generator steps
    assert total_steps(cfg.train, 12, 3) == 8
    _, result = _fit(cfg)
    assert (result.steps, result.d_steps) == (8, 24)
    assert result.epochs == pytest.approx(2.0)


def test_minutes_cap_stops_early(tmp_path):
    class Slow(Hook):
        def on_step_end(self, t, out):
            import time

            time.sleep(0.05)

    _, result = _fit(_cfg(tmp_path, "train.steps=10000", "train.minutes=0.002"), [Slow()])
    assert result.stop_reason == "minutes"
    assert 1 <= result.steps < 10000


def test_gradient_penalty_is_logged_for_wgan_gp(tmp_path):
    seen = {}

    class Capture(Hook):
        def on_step_end(self, t, out):
            seen.update(out.extras)

    _fit(
        _cfg(tmp_path, "train.steps=1", "model.wgan-gp.g_width=4", "model.wgan-gp.d_width=4", arch="wgan-gp"),
        [Capture()],
    )
    assert set(seen) == {"wasserstein", "gp"} and seen["gp"] >= 0


@pytest.fixture
def nan_loss():
    def fn(d_real, d_fake):
        nan = d_real.mean() * float("nan")
        return nan, d_fake.mean(), {}

    LOSSES.register("test-nan", LossSpec(fn, 0.0))
    yield "test-nan"
    LOSSES.unregister("test-nan")


def test_nan_guard_names_step_and_loss(tmp_path, nan_loss):
    with pytest.raises(TrainingDiverged, match="generator step 1: train/d_loss = nan") as e:
        _fit(_cfg(tmp_path, "train.steps=3", f"model.dummy.loss={nan_loss}"), [NaNGuard()])
    assert (e.value.step, e.value.loss) == (1, "train/d_loss")


def test_resume_continues_exactly(tmp_path):
    """Train 6 steps straight, or 3 + checkpoint + resume to 6: identical weights and optimiser states."""
    full, _ = _fit(_cfg(tmp_path, "train.steps=6"))
    path = tmp_path / "ck.pt"
    _fit(_cfg(tmp_path, "train.steps=3"), [Checkpointer(path, 0)])
    state = checkpoint.load(path)
    assert state["step"] == 3 and state["arch"] == "dummy"
    # a different global RNG state before resuming must not matter: the checkpoint restores it
    torch.manual_seed(999)
    resumed, result = _fit(_cfg(tmp_path, "train.steps=6"), resume=state)
    assert result.steps == 6
    for net in ("generator", "discriminator"):
        for (k, a), b in zip(
            getattr(full, net).state_dict().items(), getattr(resumed, net).state_dict().values(), strict=True
        ):
            torch.testing.assert_close(a, b, rtol=0, atol=0, msg=f"{net}.{k}")


def test_resume_rejects_other_architecture(tmp_path):
    path = tmp_path / "ck.pt"
    _fit(_cfg(tmp_path, "train.steps=1"), [Checkpointer(path, 0)])
    state = checkpoint.load(path)
    state["arch"] = "dcgan"
    checkpoint.save(path, {k: v for k, v in state.items() if k not in ("format", "version")})
    message = f"checkpoint '{path}' is for architecture 'dcgan', not 'dummy'"
    with pytest.raises(CheckpointError, match=re.escape(message)):  # ganbench train ARCH --resume
        config_from_checkpoint(checkpoint.load(path), arch="dummy", source=path)
    with pytest.raises(CheckpointError, match=re.escape(message)):  # the library call
        train(_cfg(tmp_path, "train.steps=2"), resume=path)


def test_periodic_checkpoint_cadence(tmp_path):
    saved = []
    orig = Trainer.save_checkpoint

    def spy(self, path):
        saved.append(self.step)
        return orig(self, path)

    Trainer.save_checkpoint = spy
    try:
        _fit(_cfg(tmp_path, "train.steps=7"), [Checkpointer(tmp_path / "c.pt", 3)])
    finally:
        Trainer.save_checkpoint = orig
    assert saved == [3, 6, 7]


def _state(step: int, **extra) -> dict:
    """The smallest state that loads: every key a checkpoint must hold (bench.checkpoint.REQUIRED)."""
    config = {"experiment": "x", "workdir": "w", "data": {}, "train": {}, "eval": {}, "model": {}}
    nets = {k: {} for k in ("generator", "discriminator", "opt_g", "opt_d", "rng")}
    return {"arch": "dummy", "seed": 0, "config": config, "step": step, "d_step": step, **nets, **extra}


def test_checkpoint_is_atomic_and_loads_weights_only(tmp_path):
    path = tmp_path / "c.pt"
    checkpoint.save(path, _state(1, w=torch.ones(2)))
    checkpoint.save(path, _state(2, w=torch.zeros(2)))
    assert checkpoint.load(path)["step"] == 2
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]  # no temporary file left behind


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_checkpoint_errors(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        checkpoint.load(tmp_path / "missing.pt")
    good = checkpoint.save(tmp_path / "good.pt", _state(1, w=torch.ones(1000)))
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="cannot be read"):
        checkpoint.load(truncated)
    foreign = tmp_path / "foreign.pt"
    torch.save({"model": torch.ones(1)}, foreign)
    with pytest.raises(CheckpointError, match="not a ganbench checkpoint"):
        checkpoint.load(foreign)
    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps(Recorder()))  # arbitrary objects are refused by weights_only loading
    with pytest.raises(CheckpointError, match="cannot be read|refuses to unpickle"):
        checkpoint.load(evil)


def test_a_failed_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = checkpoint.save(tmp_path / "c.pt", _state(1))

    def full_disk(obj, f, *a, **k):
        f.write(b"partial")
        raise RuntimeError("[enforce fail at inline_container.cc:671] . unexpected pos 16821568 vs 16821456")

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(
        CheckpointError, match=r"cannot write checkpoint .*c.pt.* MiB free there; the previous checkpoint is kept"
    ):
        checkpoint.save(path, _state(2))
    monkeypatch.undo()
    assert checkpoint.load(path)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]  # no temporary file left


def test_wgan_clips_every_critic_weight_and_trains_with_rmsprop(tmp_path):
    """WGAN (Arjovsky et al. 2017, Algorithm 1): RMSprop, and after each critic step every weight in [-c, c]."""
    cfg = _cfg(tmp_path, "train.steps=2", arch="wgan")
    assert (cfg.model.optimizer, cfg.model.lr_d, cfg.model.clip_value, cfg.model.n_critic) == ("rmsprop", 5e-5, 0.01, 5)
    seen = []

    class Opt(Hook):
        def on_step_end(self, t, out):
            seen.append((type(t.opt_d).__name__, type(t.opt_g).__name__))

    gan, _ = _fit(cfg, [Opt()])
    assert set(seen) == {("RMSprop", "RMSprop")}
    weights = torch.cat([p.detach().flatten() for p in gan.discriminator.parameters()])
    assert weights.abs().max() <= 0.01 + 1e-7
    assert (weights.abs() > 0.0099).float().mean() > 0.1  # initialised wider: the clip is what holds them
    unclipped, _ = _fit(_cfg(tmp_path, "train.steps=2", "model.wgan.clip_value=0.0", arch="wgan"))
    assert max(p.detach().abs().max() for p in unclipped.discriminator.parameters()) > 0.05


def test_learning_rate_schedules_by_hand():
    from architectures.registry import OptimSpec

    spec = OptimSpec(lr_g=1e-3, lr_d=1e-3, betas=(0.5, 0.999), lr_schedule="linear-decay", lr_warmup_steps=2)
    assert [spec.lr_factor(t, 6) for t in range(6)] == [0.5, 1.0, 1.0, 0.75, 0.5, 0.25]
    cos = OptimSpec(lr_g=1e-3, lr_d=1e-3, betas=(0.5, 0.999), lr_schedule="cosine")
    assert cos.lr_factor(0, 4) == 1.0 and cos.lr_factor(2, 4) == pytest.approx(0.5) and cos.lr_factor(4, 4) == 0.0
    assert OptimSpec(lr_g=1e-3, lr_d=1e-3, betas=(0.5, 0.999)).lr_factor(3, 4) == 1.0


def test_the_schedule_sets_and_logs_both_rates_and_a_resume_continues_it(tmp_path):
    sets = ["train.steps=6", 'model.dummy.lr_schedule="linear-decay"', "model.dummy.lr_d=1e-3"]
    logged = []

    class Rates(Hook):
        def on_step_end(self, t, out):
            logged.append((float(out.extras["lr_g"]), float(out.extras["lr_d"]), t.opt_d.param_groups[0]["lr"]))

    cfg = _cfg(tmp_path, *sets)
    gan, _ = _fit(cfg, [Rates()])
    lr_g = cfg.model.lr_g
    assert [g for g, _, _ in logged] == pytest.approx([lr_g * (1 - t / 6) for t in range(6)])
    assert [d for _, d, _ in logged] == pytest.approx([1e-3 * (1 - t / 6) for t in range(6)])
    assert [opt for _, _, opt in logged] == pytest.approx([d for _, d, _ in logged])  # what the optimiser used
    # stopped after three steps, checkpointed, resumed: the same rates as one run of six
    ck = tmp_path / "ck.pt"

    class StopAndSave(Hook):
        def on_step_end(self, t, out):
            if out.step == 3:
                t.stop("interrupted")

        def on_fit_end(self, t):
            checkpoint.save(ck, t.state_dict())

    logged.clear()
    _fit(cfg, [Rates(), StopAndSave()])
    assert len(logged) == 3
    _fit(cfg, [Rates()], resume=checkpoint.load(ck))
    assert [g for g, _, _ in logged] == pytest.approx([lr_g * (1 - t / 6) for t in range(6)])


def test_atomic_files_get_the_permissions_open_would_give(tmp_path):
    """mkstemp makes owner-only files: a team's shared workspace would hide checkpoints and reports."""
    import os

    from bench.atomic import write_text

    old = os.umask(0o022)
    try:
        (tmp_path / "plain.txt").write_text("x")
        path = write_text(tmp_path / "atomic.txt", "x")
    finally:
        os.umask(old)
    mode = path.stat().st_mode & 0o777
    assert mode == (tmp_path / "plain.txt").stat().st_mode & 0o777 == 0o644


def test_a_run_stopped_early_logs_its_last_window_of_losses(tmp_path):
    """MetricsLogger flushes at fit end: a run stopped by --minutes or pruning logs its last partial window."""
    from bench.hooks import MetricsLogger

    class Logged:
        def __init__(self):
            self.calls = []

        def log_metrics(self, metrics, step):
            self.calls.append((step, metrics))

    class StopAt3(Hook):
        def on_step_end(self, trainer, out):
            if out.step == 3:
                trainer.stop("minutes")

    run = Logged()
    _, result = _fit(_cfg(tmp_path, "train.steps=10"), [MetricsLogger(run, every=4), StopAt3()])
    assert result.stop_reason == "minutes" and result.steps == 3
    assert [s for s, _ in run.calls] == [3] and "train/d_loss" in run.calls[0][1]
