"""MLflow tracking: the only module that imports mlflow (lazily, so importing it is cheap).

Store: ``$MLFLOW_TRACKING_URI`` wins; otherwise an embedded SQLite store ``<workdir>/mlflow.db`` with
artifacts in ``<workdir>/mlartifacts``. One experiment per comparison, one run per (architecture, seed).
A run ends FINISHED only when its body completed; an exception ends it FAILED (reason in the tag
``ganbench.failure``), Ctrl-C ends it KILLED.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench import keys, signals  # keys re-exported: reports import the keys from here
from bench.errors import TakenOver, UserError

_PARAM_MAX = 6000  # MLflow's limit on a param value


def tracking_uri(workdir: str | os.PathLike[str]) -> str:
    """``$MLFLOW_TRACKING_URI`` if set, else ``sqlite:///<abs workdir>/mlflow.db``."""
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return env
    return f"sqlite:///{Path(workdir).resolve() / 'mlflow.db'}"


def store_exists(workdir: str | os.PathLike[str]) -> bool:
    """Whether there is a store to read: ``$MLFLOW_TRACKING_URI`` is set, or the workspace has its SQLite
    file (checked without creating anything)."""
    return bool(os.environ.get("MLFLOW_TRACKING_URI")) or (Path(workdir).resolve() / "mlflow.db").is_file()


def _client(uri: str):
    import logging

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    # a tracking server would print two "View run ... at: URL" lines per run into the progress output
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    # a PostgreSQL server that accepts TCP but never answers fails in seconds (libpq reads this variable)
    os.environ.setdefault("PGCONNECT_TIMEOUT", "5")
    from mlflow.tracking import MlflowClient

    logging.getLogger("alembic").setLevel(logging.WARNING)  # the store's schema set-up is not news
    if uri.startswith("sqlite:///"):
        path = Path(uri[len("sqlite:///") :])
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_file() and _half_made(path):  # set aside (kept), then built anew below
            aside = path.with_name(f"{path.name}.broken-{time.strftime('%Y%m%d-%H%M%S')}")
            os.replace(path, aside)
            message = f"the MLflow store {path} was half-made and held no runs: moved to {aside.name}, rebuilt"
            warnings.warn(message, StoreWarning, stacklevel=2)
        if not path.exists():
            _create_sqlite_store(path, MlflowClient)
    return MlflowClient(tracking_uri=uri)


class StoreWarning(UserWarning):
    """The workspace's store was repaired (the CLI prints it as one ``warning:`` line)."""


def _open(uri: str) -> Any:
    """An MLflow client of ``uri`` whose store answered (MLflow's own error log is held back: the caller
    turns a failure into one line)."""
    import logging

    db_log = logging.getLogger("mlflow.store.db.utils")
    db_log.setLevel(logging.CRITICAL)
    try:
        client = _client(uri)
        if not uri.startswith(("http://", "https://")):
            client.search_experiments(max_results=1)
        return client
    finally:
        db_log.setLevel(logging.WARNING)  # later: its warnings and errors, not its schema news


def _half_made(store: Path) -> bool:
    """Whether the SQLite file ``store`` is a store whose creation was cut short (by an older ganbench, which
    created it in place): MLflow never stamped its schema (no ``alembic_version`` row) and it holds no run.
    Such a file is safe to set aside; a store with a stamped schema or with runs never is."""
    import sqlite3

    try:
        with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as db:
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}

            def empty(table: str) -> bool:
                return table not in tables or db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] == 0

            return empty("alembic_version") and empty("runs")
    except sqlite3.Error:
        return False


def _create_sqlite_store(path: Path, client_cls: Any) -> None:
    """Create a SQLite store whole or not at all: MLflow builds its schema in a temporary file, which is
    then linked into place (SIGINT/SIGTERM wait for it, see ``bench.signals``). A kill -9 leaves at most the
    temporary file, never a half-made ``mlflow.db``; when two processes race, the first link wins and the
    other one uses it."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with signals.deferred():
            client_cls(tracking_uri=f"sqlite:///{tmp}").search_experiments(max_results=1)  # runs the migrations
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass
    finally:
        tmp.unlink(missing_ok=True)


class Run:
    """One MLflow run; use through :meth:`Tracker.run`."""

    def __init__(self, client: Any, run_id: str):
        self.client, self.run_id = client, run_id
        self.outcome: tuple[str, str | None] = ("FINISHED", None)  # how the run ends if its body completes

    def end_as(self, status: str, reason: str) -> None:
        """End the run with ``status`` (e.g. KILLED for a pruned trial) instead of FINISHED when its body
        completes; ``reason`` goes to the tag ``ganbench.failure``."""
        self.outcome = (status, reason)

    def log_params(self, params: dict[str, Any]) -> None:
        from mlflow.entities import Param

        items = [Param(k, _param_str(v)) for k, v in params.items()]
        with signals.deferred():  # every write: a signal never cuts one in half (bench.signals)
            for i in range(0, len(items), 100):  # MLflow accepts at most 100 params per batch
                self.client.log_batch(self.run_id, params=items[i : i + 100])

    def log_metrics(self, metrics: dict[str, float], step: int = 0) -> None:
        import time

        from mlflow.entities import Metric

        ts = int(time.time() * 1000)
        items = [Metric(k, float(v), ts, step) for k, v in metrics.items()]
        with signals.deferred():
            for i in range(0, len(items), 1000):
                self.client.log_batch(self.run_id, metrics=items[i : i + 1000])

    def set_tags(self, tags: dict[str, Any]) -> None:
        from mlflow.entities import RunTag

        with signals.deferred():
            self.client.log_batch(self.run_id, tags=[RunTag(k, str(v)[:5000]) for k, v in tags.items()])

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        with signals.deferred():
            self.client.log_artifact(self.run_id, str(path), artifact_path)

    def end(self, status: str, failure: str | None = None) -> None:
        """End the run with MLflow ``status`` (FINISHED, FAILED, KILLED), the reason in ``ganbench.failure``."""
        with signals.deferred():
            if failure is not None:
                self.set_tags({keys.TAG_FAILURE: failure})
            self.client.set_terminated(self.run_id, status)


def latest_floor(runs: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Of an experiment's real-data floor runs (oldest first), the one that counts: the newest that FINISHED
    (None: none did). The sequential compare, the shared grid and the reports all choose it so."""
    done = [r for r in runs if r["status"] == "FINISHED"]
    return done[-1] if done else None


def _param_str(v: Any) -> str:
    s = "None" if v is None else str(list(v) if isinstance(v, tuple) else v)
    return s[:_PARAM_MAX]


class Tracker:
    """The tracking store of one workspace.

    Raises UserError at construction if the store cannot be opened (e.g. a dead tracking server), within
    seconds.
    """

    def __init__(self, workdir: str | os.PathLike[str]):
        self.workdir = Path(workdir).resolve()
        self.uri = tracking_uri(self.workdir)
        if not os.environ.get("MLFLOW_TRACKING_URI"):
            try:
                self.workdir.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                why = "a file is in the way" if isinstance(e, (FileExistsError, NotADirectoryError)) else e.strerror
                raise UserError(f"--workdir {str(workdir)!r} cannot be used: {why or e}") from None
        self._probe()

    def _probe(self) -> None:
        """Open the store, failing in seconds with one line, before any training, when it cannot be reached,
        opened or is not an MLflow store (a legacy file store, an unknown scheme, a server that is no MLflow)."""
        uri = self.uri
        if uri.startswith("file:") or "://" not in uri:
            raise UserError(
                f"MLFLOW_TRACKING_URI = {uri!r} is a file store, which MLflow 3 no longer supports; unset it (the "
                "workspace's SQLite store) or use sqlite:///PATH/mlflow.db or http://HOST:PORT"
            )
        if uri.startswith(("http://", "https://")):
            import requests

            try:
                requests.get(uri.rstrip("/") + "/health", timeout=5).raise_for_status()
                api = uri.rstrip("/") + "/api/2.0/mlflow/experiments/search"
                requests.post(api, json={"max_results": 1}, timeout=5).raise_for_status()
            except Exception as e:
                raise UserError(
                    f"MLFLOW_TRACKING_URI = {uri!r} is unreachable or not an MLflow server ({type(e).__name__}); "
                    "start the tracking server or unset MLFLOW_TRACKING_URI to use the workspace's store"
                ) from None
        try:
            self.client = _open(uri)
        except Exception as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise UserError(f"the MLflow store {uri!r} cannot be opened: {first}") from None

    def experiment_id(self, name: str, create: bool = True) -> str | None:
        exp = self.client.get_experiment_by_name(name)
        if exp is not None:
            if exp.lifecycle_stage == "deleted":
                raise UserError(
                    f"MLflow experiment {name!r} is deleted; restore it in the UI or use another --experiment"
                )
            return exp.experiment_id
        if not create:
            return None
        from mlflow.exceptions import MlflowException

        location = None
        if not os.environ.get("MLFLOW_TRACKING_URI"):
            location = (self.workdir / "mlartifacts").as_uri()
        try:
            return self.client.create_experiment(name, artifact_location=location)
        except MlflowException:  # another worker created it first (workers share the store)
            exp = self.client.get_experiment_by_name(name)
            if exp is None:
                raise
            return exp.experiment_id

    @contextmanager
    def run(
        self, experiment: str, run_name: str, tags: dict[str, Any] | None = None, run_id: str | None = None
    ) -> Iterator[Run]:
        """Start (or, with ``run_id``, reopen) a run. It ends FINISHED when the body completes (or as
        :meth:`Run.end_as` said), KILLED on Ctrl-C / SIGTERM, FAILED on any other exception but
        :class:`bench.errors.TakenOver`, which leaves the run as it is (another process continues it)."""
        from mlflow.entities import RunStatus

        try:
            with signals.deferred():
                if run_id is None:
                    exp_id = self.experiment_id(experiment)
                    tags = {k: str(v) for k, v in (tags or {}).items()}
                    run_id = self.client.create_run(exp_id, run_name=run_name, tags=tags).info.run_id
                else:
                    self.client.update_run(run_id, status="RUNNING")
        except KeyboardInterrupt as e:  # a signal held back while the run was made: it is not left RUNNING
            if run_id is not None:
                Run(self.client, run_id).end(RunStatus.to_string(RunStatus.KILLED), str(e) or "interrupted")
            raise
        run = Run(self.client, run_id)
        try:
            yield run
        except KeyboardInterrupt as e:  # e.g. SIGTERM (bench.signals)
            run.end(RunStatus.to_string(RunStatus.KILLED), str(e) or "interrupted (KeyboardInterrupt)")
            raise
        except TakenOver:
            raise
        except BaseException as e:
            run.end(RunStatus.to_string(RunStatus.FAILED), f"{type(e).__name__}: {e}")
            raise
        run.end(*run.outcome)

    def has_run(self, run_id: str) -> bool:
        from mlflow.exceptions import MlflowException

        try:
            self.client.get_run(run_id)
            return True
        except MlflowException:
            return False

    def attach(self, run_id: str) -> Run:
        """An existing run, to log more metrics or tags to it without changing its status."""
        return Run(self.client, run_id)

    def find_runs(
        self, experiment: str, tag: str, value: str, also: dict[str, str] | None = None
    ) -> list[tuple[str, str]]:
        """``[(run_id, status), ...]`` of the experiment's runs whose tag ``tag`` equals ``value`` (filtered by the
        tracking store, not in Python) and whose tags match ``also``, newest first."""
        exp_id = self.experiment_id(experiment, create=False)
        if exp_id is None:
            return []
        # MLflow's filter strings have no escape for a quote: a value is quoted with the kind it does not hold;
        # one holding both is matched here instead (rare: tag values are ganbench's own names and numbers)
        quote = next((q for q in ("'", '"') if q not in value), None)
        where = f"tags.`{tag}` = {quote}{value}{quote}" if quote else ""
        runs = self.client.search_runs([exp_id], filter_string=where, order_by=["start_time DESC"])
        want = {tag: value, **(also or {})}
        return [(r.info.run_id, r.info.status) for r in runs if all(r.data.tags.get(k) == v for k, v in want.items())]

    def search_runs(self, experiments: Iterable[str]) -> list[dict[str, Any]]:
        """Every run of the named experiments as a dict: run_id, experiment, run_name, status, start_time,
        end_time (ms), params, metrics (latest values), tags. Raises UserError for an unknown experiment."""
        out = []
        for name in experiments:
            exp_id = self.experiment_id(name, create=False)
            if exp_id is None:
                known = sorted(e.name for e in self.client.search_experiments())
                raise UserError(
                    f"no MLflow experiment {name!r} in {self.uri}; experiments: {', '.join(known) or '(none)'}"
                )
            token = None
            while True:
                page = self.client.search_runs([exp_id], max_results=1000, page_token=token)
                for r in page:
                    out.append(
                        {
                            "run_id": r.info.run_id,
                            "experiment": name,
                            "run_name": r.info.run_name,
                            "status": r.info.status,
                            "start_time": r.info.start_time,
                            "end_time": r.info.end_time,
                            "params": dict(r.data.params),
                            "metrics": dict(r.data.metrics),
                            "tags": dict(r.data.tags),
                        }
                    )
                token = page.token
                if not token:
                    break
        return out

    def metric_history(self, run_id: str, key: str) -> list[tuple[int, float, int]]:
        """``[(step, value, timestamp_ms), ...]`` sorted by step, one per step: the latest logged (a run resumed
        from a checkpoint logs again the steps its interrupted process had logged after that checkpoint; the
        later values are those of the run as it went on)."""
        latest: dict[int, tuple[int, float, int]] = {}
        for m in sorted(self.client.get_metric_history(run_id, key), key=lambda m: m.timestamp):
            latest[m.step] = (m.step, m.value, m.timestamp)
        return sorted(latest.values())

    def download_artifact(self, run_id: str, path: str, dst: str | Path) -> Path | None:
        """Download one artifact; None if the run has no such artifact."""
        from mlflow.exceptions import MlflowException

        Path(dst).mkdir(parents=True, exist_ok=True)
        try:
            return Path(self.client.download_artifacts(run_id, path, str(dst)))
        except (MlflowException, OSError):
            return None


def serve_ui(workdir: str | os.PathLike[str], port: int = 5000, host: str = "127.0.0.1") -> int:
    """Run ``mlflow ui`` on the workspace's store (blocks until Ctrl-C); returns its exit code."""
    uri = tracking_uri(workdir)
    cmd = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--host", host, "--port", str(port)]
    if not os.environ.get("MLFLOW_TRACKING_URI"):
        cmd += ["--default-artifact-root", (Path(workdir).resolve() / "mlartifacts").as_uri()]
    try:
        return subprocess.call(cmd)
    except KeyboardInterrupt:
        return 0
