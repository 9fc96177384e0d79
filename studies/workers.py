"""Who a worker of a shared grid is, and whether it is still alive.

A worker id is ``<host>:<pid>@<start time>``: the host with its kernel boot id and pid namespace (two
machines, or two containers, may share a hostname), and the process's start time (pids are reused). Only a
worker on this host can be checked for life; another host's worker is the concern of Optuna's heartbeat.
"""

from __future__ import annotations

import contextlib
import os
import socket
from pathlib import Path


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
