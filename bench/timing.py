"""Step timing: CUDA events on a GPU, ``time.perf_counter`` on CPU.

Reported after ``warmup`` steps (all steps if there are no more than that): ms per generator step (p50,
p95, mean), images per second, peak memory (CUDA: ``max_memory_allocated``; CPU: the process's peak RSS),
and the device name.
"""

from __future__ import annotations

import platform
import resource
import time
from dataclasses import dataclass

import numpy as np
import torch


def device_name(device: torch.device, threads: int | None = None) -> str:
    """Human-readable device name: the GPU model, or the CPU model and its thread count (``threads``, default
    this process's torch threads)."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    n = threads or torch.get_num_threads()
    return f"{model} ({n} thread{'' if n == 1 else 's'})"


@dataclass(frozen=True)
class TimingSummary:
    """ms_per_step_*: milliseconds per generator step (including its n_critic discriminator steps);
    img_per_s: real images through the discriminator per second; peak_mem_mb: MiB (see module doc);
    steps_timed: steps after warm-up; device: device_name()."""

    ms_per_step_p50: float
    ms_per_step_p95: float
    ms_per_step_mean: float
    img_per_s: float
    peak_mem_mb: float
    peak_mem_kind: str
    steps_timed: int
    device: str


class StepTimer:
    """Call ``start()`` / ``stop()`` around each step; ``summary()`` at the end.

    On CUDA the events are read only in ``summary()`` (one synchronisation), so timing adds no host sync
    to the step. ``images_per_step`` is the number of real images one generator step consumes.
    """

    def __init__(self, device: torch.device, warmup: int, images_per_step: int):
        self.device, self.warmup, self.images_per_step = device, warmup, images_per_step
        self.cuda = device.type == "cuda"
        self._events: list[tuple[torch.cuda.Event, torch.cuda.Event]] = []
        self._ms: list[float] = []
        self._t0 = 0.0
        self._start_event: torch.cuda.Event | None = None
        if self.cuda:
            torch.cuda.reset_peak_memory_stats(device)

    def start(self) -> None:
        if self.cuda:
            self._start_event = torch.cuda.Event(enable_timing=True)
            self._start_event.record()
        else:
            self._t0 = time.perf_counter()

    def stop(self) -> None:
        if self.cuda:
            end = torch.cuda.Event(enable_timing=True)
            end.record()
            self._events.append((self._start_event, end))
        else:
            self._ms.append((time.perf_counter() - self._t0) * 1000.0)

    def last_ms(self) -> float | None:
        """The last step's time on CPU (None on CUDA, where reading it would synchronise)."""
        return self._ms[-1] if self._ms else None

    def step_times_ms(self) -> np.ndarray:
        if self.cuda and self._events:
            torch.cuda.synchronize(self.device)
            self._ms += [a.elapsed_time(b) for a, b in self._events]
            self._events.clear()
        ms = np.asarray(self._ms, dtype=np.float64)
        return ms[self.warmup :] if len(ms) > self.warmup else ms

    def summary(self) -> TimingSummary:
        return summarize(self.step_times_ms(), self.images_per_step, self.device, *peak_memory(self.device))


def peak_memory(device: torch.device) -> tuple[float, str]:
    """(MiB, kind): CUDA ``max_memory_allocated`` since the last reset, else the process's peak RSS."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20, "cuda_max_allocated"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, "process_max_rss"


def summarize(
    ms: np.ndarray, images_per_step: int, device: torch.device, peak_mem_mb: float, peak_mem_kind: str
) -> TimingSummary:
    """A TimingSummary of step times ``ms`` (milliseconds, warm-up already removed; empty gives NaNs)."""
    ms = np.asarray(ms, dtype=np.float64) if len(ms) else np.asarray([float("nan")])
    mean = float(ms.mean())
    return TimingSummary(
        ms_per_step_p50=float(np.percentile(ms, 50)),
        ms_per_step_p95=float(np.percentile(ms, 95)),
        ms_per_step_mean=mean,
        img_per_s=images_per_step / (mean / 1000.0),
        peak_mem_mb=float(peak_mem_mb),
        peak_mem_kind=peak_mem_kind,
        steps_timed=int(np.isfinite(ms).sum()),
        device=device_name(device),
    )
