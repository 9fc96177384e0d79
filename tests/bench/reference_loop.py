"""A frozen copy of ganbench's training loop as it was before the trainer object (``bench.harness.fit`` at
commit 2b9a6c1, its CPU path: no compile, contiguous memory, fp32), written as a plain PyTorch loop.

``tests/bench/test_trainer.py`` trains every built-in architecture with it and with ``bench.trainer.Trainer``
and asserts bit-identical weights and optimiser states: the refactor changed how the loop is organised,
not one number it computes. Do not "improve" this file; it is the reference.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from architectures.losses import LOSSES, gradient_penalty

IMPLS = {"fused": {"fused": True}, "foreach": {"foreach": True}, "for-loop": {"foreach": False}, "torch-default": {}}


def _optimizer(params, lr, o, impl):
    if o.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, **({"foreach": True} if impl.get("fused") else impl))
    return torch.optim.Adam(params, lr=lr, betas=o.betas, **impl)


def reference_fit(gan, batches, cfg, steps: int):
    """Train ``gan`` for ``steps`` generator steps on ``batches`` (a ``bench.data.BatchSource``) on the CPU;
    returns ``(opt_g, opt_d)``. The global RNG must be seeded by the caller, as ``bench.run.train`` does."""
    t, o = cfg.train, gan.optim
    G, D = gan.generator, gan.discriminator
    memory_format = torch.channels_last if t.channels_last else torch.contiguous_format
    G.to(memory_format=memory_format)
    D.to(memory_format=memory_format)
    loss_fn = LOSSES.get(gan.loss_name).fn
    impl = IMPLS[t.optimizer_impl]
    opt_g, opt_d = _optimizer(G.parameters(), o.lr_g, o, impl), _optimizer(D.parameters(), o.lr_d, o, impl)
    total = steps
    reuse_fakes = o.n_critic == 1
    batch, z_dim = batches.batch_size, G.z_dim
    conditional, n_classes = gan.conditional, gan.num_classes
    scheduled = o.lr_schedule != "constant" or o.lr_warmup_steps > 0
    clip = list(D.parameters()) if o.clip_value > 0 else []
    G.train()
    D.train()
    d_index = 0
    for step in range(total):
        if scheduled:
            factor = o.lr_factor(step, total)
            for opt, lr in ((opt_g, o.lr_g * factor), (opt_d, o.lr_d * factor)):
                for group in opt.param_groups:
                    group["lr"] = lr
        for _ in range(o.n_critic):
            real, y_real = batches.labelled(d_index) if conditional else (batches(d_index), None)
            real = real.contiguous(memory_format=memory_format)
            d_index += 1
            z = torch.randn(batch, z_dim)
            y_fake = torch.randint(n_classes, (batch,)) if conditional else None
            with torch.set_grad_enabled(reuse_fakes):
                fake = gan.generate(z, y_fake)
            d_real, c_real = gan.discriminate(real, y_real)
            d_fake, c_fake = gan.discriminate(fake.detach(), y_fake)
            d_loss, _, _ = loss_fn(d_real.float(), d_fake.float())
            if c_real is not None:
                cls = F.cross_entropy(c_real.float(), y_real) + F.cross_entropy(c_fake.float(), y_fake)
                d_loss = d_loss + gan.aux_weight * cls
            if o.gp_weight > 0:
                gp = gradient_penalty(lambda x, y=y_real: gan.discriminate(x, y)[0], real, fake)
                d_loss = d_loss + o.gp_weight * gp
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
            if clip:
                with torch.no_grad():
                    for p in clip:
                        p.clamp_(-o.clip_value, o.clip_value)
        D.requires_grad_(False)
        if not reuse_fakes:
            z = torch.randn(batch, z_dim)
            y_fake = torch.randint(n_classes, (batch,)) if conditional else None
            fake = gan.generate(z, y_fake)
        g_scores, g_classes = gan.discriminate(fake, y_fake)
        _, g_loss, _ = loss_fn(d_real.detach().float(), g_scores.float())
        if g_classes is not None:
            g_loss = g_loss + gan.aux_weight * F.cross_entropy(g_classes.float(), y_fake)
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        D.requires_grad_(True)
    return opt_g, opt_d
