"""Who a worker of a shared grid is, and whether it is still alive.

A worker id is ``<host>:<pid>@<start time>``: the host with its kernel boot id and pid namespace (two
machines, or two containers, may share a hostname), and the process's start time (pids are reused). Only a
worker on this host can be checked for life; another host's worker is the concern of Optuna's heartbeat.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any


def host() -> str:
    """This host as a worker id names it: the hostname, the kernel's boot id (two machines may share a
    hostname) and the pid namespace (containers that share a hostname, e.g. ``--net=host``, do not share
    pids), where Linux tells them."""
    parts = [socket.gethostname()]
    with contextlib.suppress(OSError):
        parts.append(Path("/proc/sys/kernel/random/boot_id").read_text().strip()[:8])
    with contextlib.suppress(OSError):
        parts.append(str(os.stat("/proc/self/ns/pid").st_ino))
    return "/".join(parts)


def proc_stat(pid: int | str) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name (state first, start time 20th), or None
    where there is no such process or no ``/proc``."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return fields if len(fields) > 19 else None


def worker_id() -> str:
    """``<host>:<pid>``, with ``@<start time>`` (clock ticks since boot: with the pid it names one process,
    pids are reused) where Linux tells it."""
    stat = proc_stat(os.getpid())
    return f"{host()}:{os.getpid()}" + (f"@{stat[19]}" if stat else "")


def alive(worker: str) -> bool:
    """Whether the worker ``host:pid[@start]`` may still be running (True for another host: only its heartbeat
    can tell). A zombie (exited, not yet reaped by its parent) counts as dead, and so does a process that
    started at another time (its pid was reused)."""
    where, _, proc = worker.rpartition(":")
    pid, _, start = proc.partition("@")
    if where != host() or not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = proc_stat(pid)
    return stat is None or (stat[0] != "Z" and (not start or stat[19] == start))


def thread_locks_for_progress_bars() -> None:
    """Give tqdm (which torch-fidelity and Optuna use) a thread lock instead of its default multiprocessing one,
    in a worker process. tqdm's lock is a named semaphore registered with multiprocessing's resource tracker,
    which the launcher shares: a worker killed with SIGKILL never unregisters it, and the launcher then ends
    with "resource_tracker: There appear to be N leaked semaphore objects". A worker draws no bars of other
    processes, so a thread lock is all it needs."""
    import threading

    import tqdm

    tqdm.tqdm.set_lock(threading.RLock())


def supervise(
    target: Callable[[dict[str, Any]], None],
    payload: Callable[[int], dict[str, Any]],
    left: Callable[[], bool],
    workers: int,
    echo: Callable[[str], None],
) -> None:
    """Spawn ``workers`` processes ``target(payload(i))``, start another in the place of one that dies (at most
    2 x workers times) while ``left()`` says work is left, and wait for all of them.

    Ctrl-C reaches the workers too (one process group): they finish their step, checkpoint and end their runs
    KILLED; a SIGTERM that reached this process only is passed on (a worker that got it already, from a batch
    system signalling the whole job, ignores the repeat: bench.signals). Workers still alive after 120 s are
    killed. Used by the shared grid (``studies.grid``) and the search queue (``studies.search_queue``)."""
    ctx = multiprocessing.get_context("spawn")

    def start(i: int) -> Any:
        p = ctx.Process(target=target, args=(payload(i),), name=f"ganbench-worker-{i}")
        p.start()
        return p

    procs = {i: start(i) for i in range(workers)}
    restarts = 0
    try:
        while procs:
            multiprocessing.connection.wait([p.sentinel for p in procs.values()])
            for i, p in list(procs.items()):
                if p.is_alive():
                    continue
                p.join()
                del procs[i]
                if p.exitcode in (0, 130, 143) or restarts >= 2 * workers:
                    continue
                if left():
                    echo(f"worker {i} (pid {p.pid}) ended with exit code {p.exitcode}; starting another")
                    procs[i] = start(i)
                    restarts += 1
    except KeyboardInterrupt as e:
        if getattr(e, "signum", signal.SIGINT) != signal.SIGINT:
            for p in procs.values():
                p.terminate()
        for p in procs.values():
            p.join(timeout=120)
        for p in procs.values():
            if p.is_alive():
                p.kill()
        raise


@contextlib.contextmanager
def worker_process(threads: int | None) -> Any:
    """The body of a spawned worker process: ganbench's signal handlers first (Ctrl-C and SIGTERM checkpoint and
    end the run KILLED), a thread lock for progress bars (:func:`thread_locks_for_progress_bars`), on the CPU
    its share of the cores as torch threads; an interrupt ends the process with its exit code (130, 143)."""
    from bench import signals

    signals.install()
    thread_locks_for_progress_bars()  # a SIGKILLed worker leaks no semaphore into the launcher's tracker
    try:
        if threads:
            import torch

            torch.set_num_threads(threads)
        yield
    except KeyboardInterrupt as e:
        raise SystemExit(getattr(e, "exit_code", 130)) from None
