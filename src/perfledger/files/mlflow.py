"""MLflow's tracking database, read as evaluations: ``Ledger.import_mlflow`` and
``perfledger import-mlflow``.

MLflow (≥ 1.x, and its default since 3.7) keeps runs in a SQL database (SQLite or
PostgreSQL). perfledger reads five of its tables straight through SQLAlchemy, without MLflow
installed: ``experiments``, ``runs``, ``latest_metrics``, ``params`` and ``tags``. The rules:

* **Which runs.** Runs whose ``status`` is ``FINISHED``, neither they nor their experiment
  deleted (``lifecycle_stage = 'active'``), of every experiment or of the ``experiments``
  named. Runs still RUNNING, FAILED, KILLED or SCHEDULED are counted in the report, not
  imported: their metrics are not a finished evaluation.
* **One run, one evaluation.** Its latest value of each metric (``latest_metrics``; a NaN is
  "not measured"). A metric mapped by ``metrics={"sharpe": "sharpe_ratio"}`` (ledger name:
  MLflow name) goes to that ledger metric; an unmapped MLflow metric named like a core metric
  (``mse``, ``accuracy``, ...) fills that column, one named by any other identifier becomes a
  custom metric of that name, and any other name (``val/loss``) is skipped and listed in the
  report (map it: ``metrics={"val_loss": "val/loss"}``).
* **Ticker and model** come from where you say (``param:NAME``, ``tag:NAME``, or for the
  model ``run-name``), never guessed: a run without them is listed by run id in the report
  and skipped; nothing else is blocked by it.
* **Params** are carried, each value read as JSON when it is JSON (MLflow stores ``6`` as the
  text ``"6"``: it becomes the number 6, as ``perfledger log --param max_depth=6`` stores it),
  else kept as text (``NaN``, ``Infinity`` or ``1e400``, not strict JSON, stay text).
  **Tags**: every tag but MLflow's own (``mlflow.*``), plus ``mlflow_run`` (the run id)
  and ``mlflow_experiment`` (its experiment's name); the run's description
  (``mlflow.note.content``) becomes the notes.
* **Timestamp**: the run's end time (its start time if it has none).

The rows then go through the file importer (:func:`.importer.import_rows`): the same checks,
and the same content keys claimed in the insert's transaction, so a second import (or two at
once) adds nothing. Rows the ledger refuses (a ``win_rate`` of 68) are reported by run id;
like a file, the import then stores nothing unless ``skip_invalid``.
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import MissingDependencyError, StorageError, StoreConnectionError, ValidationError
from ..location import describe_url_text, driver_install_hint, foreign_database, hide_password
from ..records.record import CORE_METRICS
from ..records.timestamps import format_ts
from ..records.validation import check_metric_name
from .importer import ImportReport, LedgerLike, import_rows

if TYPE_CHECKING:
    import sqlalchemy as sa

#: The tables read, and the columns of each (stable across MLflow 1.x to 3.x).
TABLES: dict[str, tuple[str, ...]] = {
    "experiments": ("experiment_id", "name", "lifecycle_stage"),
    "runs": ("run_uuid", "name", "status", "start_time", "end_time", "lifecycle_stage", "experiment_id"),
    "latest_metrics": ("run_uuid", "key", "value", "is_nan"),
    "params": ("run_uuid", "key", "value"),
    "tags": ("run_uuid", "key", "value"),
}
SYSTEM_TAG_PREFIX = "mlflow."
NOTE_TAG = "mlflow.note.content"
RUN_TAG = "mlflow_run"
EXPERIMENT_TAG = "mlflow_experiment"


@dataclass(frozen=True, slots=True)
class NameSource:
    """Where a run's ticker or model name is read: ``param:NAME``, ``tag:NAME`` or ``run-name``."""

    kind: str
    name: str = ""

    @classmethod
    def parse(cls, text: str, argument: str, *, run_name: bool) -> NameSource:
        if not isinstance(text, str):
            raise TypeError(f"{argument} must be a str, got {type(text).__name__} {text!r}")
        kind, sep, name = text.partition(":")
        if kind == "run-name" and not sep and run_name:
            return cls("run-name")
        if sep and kind in ("param", "tag") and name:
            return cls(kind, name)
        forms = "param:NAME, tag:NAME" + (" or run-name" if run_name else "")
        raise ValidationError(f"{argument}={text!r} must be {forms}", [(None, argument, text)])

    def read(self, run_name: str | None, params: Mapping[str, str], tags: Mapping[str, str]) -> str | None:
        source = params if self.kind == "param" else tags
        value = run_name if self.kind == "run-name" else source.get(self.name)
        return value if value is not None and value.strip() else None

    def __str__(self) -> str:
        return "the run name" if self.kind == "run-name" else f"{self.kind} {self.name!r}"


@dataclass(slots=True)
class MlflowImportReport(ImportReport):
    """What an MLflow import did: :class:`ImportReport`'s counts (``rejected`` by run id) plus
    the runs skipped for a missing ticker or model (``missing``: run id, what is missing), the
    runs not imported because they had not finished (``unfinished``: status -> count), and the
    MLflow metric names that are no ledger metric name and were not mapped."""

    runs: int = 0
    missing: list[tuple[str, str]] = field(default_factory=list)
    unfinished: dict[str, int] = field(default_factory=dict)
    unmapped_metrics: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """The report for people: the summary, then what was skipped and why."""
        out = [f"{self.summary()} (of {self.runs} finished run(s))"]
        out += [f"  run {run}: skipped, {why}" for run, why in self.missing]
        out += [f"  {r.where}: {r.message}" for r in self.rejected]
        if self.unfinished:
            out.append("  not finished, not imported: "
                       + ", ".join(f"{n} {status}" for status, n in sorted(self.unfinished.items())))
        if self.unmapped_metrics:
            out.append("  metrics skipped (no ledger metric of that name, or the name is mapped from "
                       "another; map them with --metric NAME=MLFLOW_NAME): "
                       f"{', '.join(self.unmapped_metrics)}")
        return out


def check_metric_map(metrics: Mapping[str, str] | None) -> dict[str, str]:
    """``{ledger metric: MLflow metric}``, each ledger name a core or valid custom metric name
    and each MLflow name mapped once; a ValidationError naming ``metrics`` otherwise."""
    out = dict(metrics or {})
    for ours, theirs in out.items():
        if ours not in CORE_METRICS:
            check_metric_name(ours, "metrics")
        if not isinstance(theirs, str) or not theirs:
            raise ValidationError(f"metrics[{ours!r}]={theirs!r} must name an MLflow metric",
                                  [(None, "metrics", ours)])
    twice = [k for k, n in Counter(out.values()).items() if n > 1]
    if twice:
        raise ValidationError(f"metrics maps MLflow metric {twice[0]!r} twice", [(None, "metrics", twice[0])])
    return out


def _value(text: str) -> Any:
    """A param's text as the JSON value it spells, else the text itself. Strict JSON only:
    ``NaN``, ``Infinity`` and numbers beyond a float (``1e400``) are not JSON numbers (Python's
    lenient reader would make them non-finite floats, which no param can hold): they stay
    text, as params are labels, so such a run imports like any other."""
    try:
        value = json.loads(text, parse_constant=_not_json)
    except (ValueError, RecursionError):
        return text
    return value if _finite(value) else text


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")


def _finite(value: Any) -> bool:
    """True when ``value`` (parsed JSON) holds no non-finite number at any depth."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return all(_finite(v) for v in value)
    if isinstance(value, dict):
        return all(_finite(v) for v in value.values())
    return True


def _ledger_metric(key: str, mapped: Mapping[str, str]) -> str | None:
    """The ledger metric an unmapped MLflow metric goes to, or None when it has no such name."""
    if key in CORE_METRICS:
        return None if key in mapped else key
    try:
        check_metric_name(key)
    except (ValidationError, TypeError):
        return None
    return None if key in mapped else key


def read_runs(
    engine: sa.Engine, experiments: Sequence[str] | None, where: str | None = None
) -> tuple[list[dict[str, Any]], Counter[str]]:
    """The finished, active runs (of ``experiments``, if given) with their metrics, params
    and tags; and how many runs of those experiments had not finished, per status. ``where``
    names the database in errors as the user gave it (not the read-only URI opened)."""
    import sqlalchemy as sa

    present = set(sa.inspect(engine).get_table_names())
    missing = [t for t in TABLES if t not in present]
    if missing:
        raise ValidationError(
            f"{where or describe_url_text(engine.url)} is not an MLflow tracking database: no table(s) "
            f"{', '.join(missing)}", [(None, "uri", "not MLflow")],
        )
    t = {name: sa.table(name, *(sa.column(c) for c in cols)) for name, cols in TABLES.items()}
    exp, runs = t["experiments"], t["runs"]
    with engine.connect() as conn:
        known = {r.experiment_id: r.name for r in conn.execute(
            sa.select(exp.c.experiment_id, exp.c.name).where(exp.c.lifecycle_stage == "active"))}
        if experiments is not None:
            names = set(known.values())
            unknown = [e for e in experiments if e not in names]
            if unknown:
                raise ValidationError(
                    f"experiment {unknown[0]!r} is not an active experiment of this store; known: "
                    f"{sorted(names)}", [(None, "experiments", unknown[0])],
                )
            known = {k: v for k, v in known.items() if v in set(experiments)}
        ids = list(known)
        active = sa.and_(runs.c.lifecycle_stage == "active", runs.c.experiment_id.in_(ids))
        statuses = Counter({s: n for s, n in conn.execute(
            sa.select(runs.c.status, sa.func.count()).where(active, runs.c.status != "FINISHED")
            .group_by(runs.c.status))})
        finished = sa.and_(active, runs.c.status == "FINISHED")
        out: dict[str, dict[str, Any]] = {}
        for r in conn.execute(sa.select(*runs.c).where(finished).order_by(runs.c.end_time, runs.c.run_uuid)):
            out[r.run_uuid] = {"run_id": r.run_uuid, "run_name": r.name, "experiment": known[r.experiment_id],
                               "end_time": r.end_time if r.end_time is not None else r.start_time,
                               "metrics": {}, "params": {}, "tags": {}}
        chosen = sa.select(runs.c.run_uuid).where(finished).scalar_subquery()
        for name in ("latest_metrics", "params", "tags"):
            tab = t[name]
            nan = [tab.c.is_nan] if name == "latest_metrics" else []
            cols = [tab.c.run_uuid, tab.c.key, tab.c.value, *nan]
            for row in conn.execute(sa.select(*cols).where(tab.c.run_uuid.in_(chosen))):
                run = out.get(row.run_uuid)
                if run is None:
                    continue
                if name == "latest_metrics":
                    run["metrics"][row.key] = None if row.is_nan else float(row.value)
                else:
                    run[name][row.key] = row.value
    return list(out.values()), statuses


def import_mlflow(
    led: LedgerLike,
    uri: str | os.PathLike[str],
    *,
    ticker_from: str = "param:ticker",
    model_from: str = "run-name",
    metrics: Mapping[str, str] | None = None,
    experiments: Sequence[str] | None = None,
    skip_invalid: bool = False,
) -> MlflowImportReport:
    """Import the finished runs of the MLflow tracking database at ``uri`` (a SQLAlchemy URL
    or an SQLite file's path) into ``led``, by the rules of the module docstring."""
    import sqlalchemy as sa

    if isinstance(experiments, str):
        experiments = [experiments]  # one name, as ticker= takes one name or a list
    tick = NameSource.parse(ticker_from, "ticker_from", run_name=False)
    model = NameSource.parse(model_from, "model_from", run_name=True)
    mapped = check_metric_map(metrics)
    url = foreign_database(uri, "uri")
    where_db = hide_password(os.fspath(uri))
    try:
        engine = sa.create_engine(url)
    except ModuleNotFoundError as exc:
        raise MissingDependencyError(
            f"reading {where_db} needs the {exc.name} driver: {driver_install_hint(url, exc.name)}"
        ) from None
    try:
        runs, unfinished = read_runs(engine, experiments, where_db)
    except sa.exc.OperationalError as exc:
        raise StoreConnectionError(f"cannot connect to or read the MLflow database {where_db} "
                                   f"({type(exc.orig).__name__})") from None
    except sa.exc.DBAPIError as exc:
        raise StorageError(f"the MLflow database {where_db} could not be read ({type(exc.orig).__name__}: "
                           "damaged, or not a database)", cause="damaged") from None
    finally:
        engine.dispose()
    report = MlflowImportReport(path=where_db, runs=len(runs), unfinished=dict(unfinished))
    by_mlflow = {theirs: ours for ours, theirs in mapped.items()}
    unmapped: set[str] = set()
    rows: list[dict[str, Any]] = []
    where: list[str] = []
    for run in runs:
        ticker = tick.read(run["run_name"], run["params"], run["tags"])
        model_name = model.read(run["run_name"], run["params"], run["tags"])
        absent = [f"no ticker ({tick})"] if ticker is None else []
        absent += [f"no model ({model})"] if model_name is None else []
        if absent:
            report.missing.append((run["run_id"], ", ".join(absent)))
            continue
        core: dict[str, float | None] = {}
        custom: dict[str, float] = {}
        for key, value in run["metrics"].items():
            ours = by_mlflow.get(key) or _ledger_metric(key, mapped)
            if ours is None:
                unmapped.add(key)
            elif value is not None:
                (core if ours in CORE_METRICS else custom)[ours] = value
        tags = {k: v for k, v in run["tags"].items() if not k.startswith(SYSTEM_TAG_PREFIX)}
        tags |= {RUN_TAG: run["run_id"], EXPERIMENT_TAG: run["experiment"]}
        rows.append({
            "timestamp": format_ts(int(run["end_time"]) * 1000) if run["end_time"] is not None else None,
            "ticker": ticker, "model_name": model_name, **core, "notes": run["tags"].get(NOTE_TAG, ""),
            "metrics": custom or None, "params": {k: _value(v) for k, v in run["params"].items()} or None,
            "tags": tags,
        })
        where.append(f"run {run['run_id']}")
    report.unmapped_metrics = sorted(unmapped)
    import_rows(led, rows, where, {}, report, skip_invalid=skip_invalid)
    return report
