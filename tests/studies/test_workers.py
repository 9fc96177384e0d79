"""A worker process killed with SIGKILL leaves no semaphore behind in the launcher's resource tracker."""

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import multiprocessing as mp, os, signal, sys, time

    def child(fix, ready):
        if fix:
            from studies.workers import thread_locks_for_progress_bars
            thread_locks_for_progress_bars()
        import tqdm
        for _ in tqdm.tqdm(range(2), disable=True):  # what torch-fidelity and Optuna do in a worker
            pass
        tqdm.tqdm.get_lock()
        ready.set()
        time.sleep(60)

    if __name__ == "__main__":
        ctx = mp.get_context("spawn")
        ready = ctx.Event()
        p = ctx.Process(target=child, args=(sys.argv[1] == "fix", ready))
        p.start()
        assert ready.wait(60)
        os.kill(p.pid, signal.SIGKILL)
        p.join()
    """
)


def test_a_killed_worker_leaks_no_semaphore(tmp_path):
    script = tmp_path / "kill.py"
    script.write_text(SCRIPT)
    run = [sys.executable, str(script)]
    broken = subprocess.run([*run, "plain"], capture_output=True, text=True, timeout=120)
    fixed = subprocess.run([*run, "fix"], capture_output=True, text=True, timeout=120)
    assert "leaked semaphore" in broken.stderr  # what the launcher printed after a chaos run
    assert fixed.returncode == 0 and "leaked semaphore" not in fixed.stderr, fixed.stderr
