"""A plain PyTorch DCGAN on MNIST that knows nothing of ganbench: it trains, then writes its samples (and its
generator as TorchScript) for ``ganbench eval`` to score beside ganbench's own runs.

    python examples/plain_dcgan.py --epochs 5 --out plain-dcgan.npz --generator-out plain-dcgan.pt
    ganbench eval --samples plain-dcgan.npz --name plain-dcgan            # or: --generator plain-dcgan.pt
    ganbench report --experiment mnist-compare

The network is the DCGAN of Radford et al. 2016 at 28x28 (the PyTorch DCGAN example's widths: G projects z
to 128x7x7, two stride-2 transposed convolutions with BatchNorm and ReLU, tanh; D two stride-2 convolutions
with LeakyReLU(0.2) and BatchNorm on the second, a linear logit), trained with the non-saturating BCE loss
and Adam(2e-4, beta1 0.5), batch 64. MNIST is read from the gzip'd IDX files under $GANBENCH_DATA/MNIST/raw
(or --data). Samples: ``x`` uint8 (N, 28, 28, 1) in the .npz, z ~ N(0, I) drawn from --seed.
"""

from __future__ import annotations

import argparse
import gzip
import os
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn


def read_mnist_images(root: Path) -> torch.Tensor:
    """MNIST's 60 000 training images as uint8 (N, 1, 28, 28), from the IDX file (LeCun et al. 1998's format)."""
    raw = gzip.decompress((root / "MNIST" / "raw" / "train-images-idx3-ubyte.gz").read_bytes())
    return torch.from_numpy(np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(-1, 1, 28, 28).copy())


class Generator(nn.Module):
    def __init__(self, z_dim: int = 100, width: int = 64):
        super().__init__()
        self.z_dim = z_dim
        self.net = nn.Sequential(
            nn.Linear(z_dim, 2 * width * 7 * 7, bias=False),
            nn.Unflatten(1, (2 * width, 7, 7)),
            nn.BatchNorm2d(2 * width),
            nn.ReLU(True),
            nn.ConvTranspose2d(2 * width, width, 4, 2, 1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(True),
            nn.ConvTranspose2d(width, 1, 4, 2, 1),
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class Discriminator(nn.Module):
    def __init__(self, width: int = 64):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, width, 4, 2, 1),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(width, 2 * width, 4, 2, 1, bias=False),
            nn.BatchNorm2d(2 * width),
            nn.LeakyReLU(0.2, True),
            nn.Flatten(),
            nn.Linear(2 * width * 7 * 7, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(1)


def init_weights(m: nn.Module) -> None:
    """N(0, 0.02) weights, BatchNorm N(1, 0.02) (Radford et al. 2016)."""
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(m.weight, 0.0, 0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=os.environ.get("GANBENCH_DATA", "data"), help="folder holding MNIST/raw")
    parser.add_argument("--epochs", type=float, default=5.0)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-samples", type=int, default=10_000)
    parser.add_argument("--out", default="plain-dcgan.npz", help="where the samples go (.npz)")
    parser.add_argument("--generator-out", default=None, help="also save G as TorchScript here")
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    images = read_mnist_images(Path(args.data))
    g, d = Generator(), Discriminator()
    g.apply(init_weights)
    d.apply(init_weights)
    opt_g = torch.optim.Adam(g.parameters(), 2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), 2e-4, betas=(0.5, 0.999))
    bce = nn.BCEWithLogitsLoss()
    steps = int(args.epochs * len(images) / args.batch_size)
    start, step = time.perf_counter(), 0
    while step < steps:
        for idx in torch.randperm(len(images)).split(args.batch_size):
            if step == steps or len(idx) < args.batch_size:
                break
            real = images[idx].float() / 127.5 - 1
            fake = g(torch.randn(len(idx), g.z_dim))
            ones, zeros = torch.ones(len(idx)), torch.zeros(len(idx))
            loss_d = bce(d(real), ones) + bce(d(fake.detach()), zeros)
            opt_d.zero_grad()
            loss_d.backward()
            opt_d.step()
            loss_g = bce(d(fake), ones)  # non-saturating
            opt_g.zero_grad()
            loss_g.backward()
            opt_g.step()
            step += 1
            if step % 200 == 0 or step == steps:
                print(f"step {step}/{steps}  d_loss {loss_d.item():.3f}  g_loss {loss_g.item():.3f}  "
                      f"{time.perf_counter() - start:.0f} s", flush=True)  # fmt: skip

    g.eval()
    with torch.no_grad():
        z = torch.randn(args.n_samples, g.z_dim, generator=torch.Generator().manual_seed(args.seed))
        x = torch.cat([g(part) for part in z.split(500)])
    u8 = ((x + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()  # NHWC
    np.savez_compressed(args.out, x=u8)
    print(f"wrote {len(u8)} samples to {args.out}")
    if args.generator_out:
        with warnings.catch_warnings():  # torch 2.15 deprecates TorchScript; ganbench eval --generator reads it
            warnings.simplefilter("ignore", FutureWarning)
            torch.jit.save(torch.jit.script(g), args.generator_out)
        print(f"wrote the generator (TorchScript, z_dim {g.z_dim}) to {args.generator_out}")


if __name__ == "__main__":
    main()
