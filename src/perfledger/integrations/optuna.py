"""Optuna: every trial of a study logged to the ledger, and every trial counted.

``study.optimize(objective, callbacks=[LedgerCallback(led, ticker="AAPL", model_name="XGB",
metric="sharpe")])`` logs each finished trial as one evaluation:

* its objective value under ``metric`` (a core metric's column, or a custom metric, whose
  direction is registered from the study's direction when the ledger does not know it yet);
* its params (``trial.params``, plus the callback's own ``params``, the trial's winning);
* its user attributes, by one rule (:func:`user_attr_fields`): a finite real number under an
  identifier name is a metric (a core metric's name fills that column; a custom metric
  otherwise; a number the ledger cannot store, NaN, ±inf, beyond 1e±100 or outside its
  metric's range such as a ``win_rate`` of 55, is skipped with one warning per attribute
  name, never stopping the study), a string is a tag (the callback's tags win a clash),
  anything else (bools, None, lists, dicts, numbers under names that are not identifiers)
  is skipped. A user attribute named like ``metric`` is skipped: that column holds the objective value only;
* tags ``optuna_study`` (the study's name), ``optuna_trial`` (its number) and ``trial_state``
  (``complete``, ``pruned`` or ``failed``), plus the callback's own ``tags``;
* the time the trial finished as its timestamp (Optuna keeps local naive times: read as
  this machine's local time, stored in UTC).

**Pruned and failed trials are trials.** They are logged too, without the metric's value,
tagged ``trial_state=pruned|failed``: the Deflated Sharpe Ratio counts them in its N
(:meth:`~perfledger.Ledger.unscored_trials`), because the best Sharpe of a study is the best
of every configuration it tried, not only of those that finished.

**Once per trial.** The record's import key is a digest of (study name, trial number, the
trial's start time, ticker, model), claimed in the insert's transaction under the ledger's
uniqueness rule (as file imports are): a study resumed in another process, several workers
sharing Optuna's RDB storage, or :meth:`LedgerCallback.log_study` run over a study already
logged, store each trial once. The start time (kept by Optuna's storage to the microsecond,
read back identically by every process) tells apart two *different* studies of the same
name: a script re-run with Optuna's default in-memory storage, or a study of that name in
another storage, numbers its trials from 0 again; without it their trials would pass for
the first study's and be silently dropped from the Deflated Sharpe's N. Records of the
release before, keyed without the start time, are not stored again by a back-fill: they are
recognised by what that key held (study, trial number, ticker, model, kept as the record's
tags and columns) and by the trial's finish time (the record's timestamp), which tells apart
same-named studies as the start time does (:meth:`LedgerCallback.log_study`).

**Directions agree.** The study's direction must be the metric's: a study minimizing under
``metric="sharpe"`` (higher is better), or maximizing a custom metric registered
lower-is-better, is refused before its first trial is stored (a ``ValidationError`` naming
the metric and both directions), since the ledger would rank its values backwards. Log a
minimized objective under a metric of its own (``metric="neg_sharpe"``), or return the
Sharpe and maximize.

Optuna itself is not imported here (the callback reads the trial it is given), so
``pip install 'perfledger[optuna]'`` only adds Optuna for your own code.
"""

from __future__ import annotations

import hashlib
import logging
import math
import numbers
import threading
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ..errors import ValidationError
from ..records.record import CORE_METRICS
from ..records.validation import (
    bound_message,
    check_json_map,
    check_label,
    check_metric_name,
    magnitude_message,
)
from ..stats.backtest import TRIAL_STATE_TAG

if TYPE_CHECKING:
    from ..ledger import Ledger

log = logging.getLogger("perfledger.optuna")

#: Optuna's finished states, as the ``trial_state`` tag spells them.
STATES: dict[str, str] = {"COMPLETE": "complete", "PRUNED": "pruned", "FAIL": "failed"}
STUDY_TAG = "optuna_study"
TRIAL_TAG = "optuna_trial"


def trial_key(
    study_name: str, number: int, ticker: str, model_name: str, started: datetime | None = None
) -> str:
    """The import key of one trial's record: the same trial logged for the same (ticker,
    model) has the same key in every process, so the ledger stores it once; ``started`` (the
    trial's ``datetime_start``) tells apart trial N of two studies sharing a name."""
    text = "\x00".join(("optuna", study_name, str(int(number)), _instant(started), ticker, model_name))
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()


def _finished(trial: Any) -> datetime:
    """When ``trial`` finished (its start, when Optuna kept no end), in UTC: the record's
    timestamp. Optuna's naive times are this machine's local time."""
    finished = trial.datetime_complete or trial.datetime_start or datetime.now()
    if finished.tzinfo is None:
        finished = finished.astimezone()
    return finished.astimezone(UTC)


def _instant(moment: datetime | None) -> str:
    """``moment`` as UTC text to the microsecond. Optuna hands back naive local times (its RDB
    storage keeps UTC and converts on read), so a naive time is read as this machine's local
    time: workers in different time zones sharing one storage compute the same text."""
    if moment is None:
        return ""
    if moment.tzinfo is None:
        moment = moment.astimezone()
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def user_attr_fields(
    attrs: Mapping[str, Any], metric_names: Sequence[str], warned: set[str] | None = None
) -> tuple[dict[str, float], dict[str, float], dict[str, str]]:
    """A trial's user attributes as ``(core, custom, tags)`` by the rule in the module
    docstring; attributes named in ``metric_names`` (the study's metrics) are left out.
    A skipped number is warned about once per name in ``warned`` (a callback's set, so a
    long study logs one line per attribute, not one per trial)."""
    core: dict[str, float] = {}
    custom: dict[str, float] = {}
    tags: dict[str, str] = {}
    for name, value in attrs.items():
        if name in metric_names:
            continue
        if isinstance(value, str):
            tags[name] = value
            continue
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            continue
        if name not in CORE_METRICS:
            try:
                check_metric_name(name)
            except (ValidationError, TypeError):
                continue  # not an identifier, or a record field's name (notes, ticker, ...)
        f = float(value)
        problem = (f"{name}={value!r} is not a finite number" if not math.isfinite(f)
                   else magnitude_message(name, f) or bound_message(name, f))
        if problem:
            if warned is None or name not in warned:
                log.warning("user attribute skipped (and in later trials, without another "
                            "warning): %s", problem)
                if warned is not None:
                    warned.add(name)
            continue
        (core if name in CORE_METRICS else custom)[name] = f
    return core, custom, tags


class LedgerCallback:
    """An Optuna callback logging every finished trial of a study to ``ledger``.

    ``metric`` names the objective's value in the ledger (``"sharpe"``, another core metric,
    or a custom metric); a multi-objective study gives one name per objective, in order.
    ``params``/``tags``/``notes`` are added to every record (the trial's params win a clash).
    Bad settings raise :class:`~perfledger.ValidationError` here, before the study runs; a
    study whose direction contradicts the metric's, or an objective value the ledger refuses
    (say a ``win_rate`` of 68), raises from the callback, which stops the study: nothing
    wrong is stored quietly. A user attribute the ledger cannot store is skipped instead
    (it is extra information, not the objective).

    Example::

        led = Ledger()
        study = optuna.create_study(direction="maximize", study_name="xgb-aapl",
                                    storage="sqlite:///optuna.db", load_if_exists=True)
        study.optimize(objective, n_trials=50,
                       callbacks=[LedgerCallback(led, ticker="AAPL", model_name="XGB")])
        led.sharpe_confidence("AAPL")   # N counts all 50 trials, pruned and failed too
    """

    def __init__(
        self,
        ledger: Ledger,
        *,
        ticker: str,
        model_name: str,
        metric: str | Sequence[str] = "sharpe",
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
        notes: str = "",
    ) -> None:
        self.ledger = ledger
        self.ticker = check_label("ticker", ticker)
        self.model_name = check_label("model_name", model_name)
        names = (metric,) if isinstance(metric, str) else tuple(metric)
        if not names:
            raise ValidationError("metric names no metric", [(None, "metric", "empty")])
        for name in names:
            if name not in CORE_METRICS:
                check_metric_name(name, "metric")
        if len(set(names)) != len(names):
            raise ValidationError(f"metric={list(names)!r} names a metric twice",
                                  [(None, "metric", "repeated")])
        self.metrics: tuple[str, ...] = names
        self.params = check_json_map("params", params)
        self.tags = check_json_map("tags", tags, str_values=True)
        if not isinstance(notes, str):
            raise TypeError(f"notes must be a str, got {type(notes).__name__} {notes!r}")
        self.notes = notes
        self._directions: dict[str, bool] | None = None
        self._warned: set[str] = set()
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ Optuna's call

    def __call__(self, study: Any, trial: Any) -> None:
        """Log ``trial`` (called by ``study.optimize`` after each trial finishes)."""
        self._log([self.record(study, trial)], [study])

    def log_study(self, study: Any) -> int:
        """Log every finished trial of ``study`` not logged yet (a study run without the
        callback, or by workers some of which had none); returns how many were stored.

        A trial the release before logged (its import key did not hold the start time, so
        claiming today's key would store it again) is skipped: see :meth:`_logged_unkeyed`."""
        trials = [t for t in study.get_trials(deepcopy=False) if t.state.name in STATES]
        if trials:
            earlier = self._logged_unkeyed(study)
            trials = [t for t in trials if (str(t.number), _finished(t)) not in earlier]
        rows = [self.record(study, t) for t in trials]
        return self._log(rows, [study] * len(rows))

    def _logged_unkeyed(self, study: Any) -> set[tuple[str, datetime]]:
        """(trial number, finish time) of the records of ``study`` already in the ledger for
        this callback's ticker and model, read from the records themselves: the release
        before keyed a trial by (study name, number, ticker, model) only, all of which a
        record keeps (tags ``optuna_study``/``optuna_trial``, its ticker and model), and the
        finish time, its timestamp to the microsecond, tells this study's trial N from
        trial N of an earlier study of the same name."""
        done = self.ledger.history(ticker=self.ticker, model_name=self.model_name,
                                   tags={STUDY_TAG: study.study_name}, include_meta=True,
                                   columns=["notes"])
        return {(str(tags.get(TRIAL_TAG)), ts.to_pydatetime())
                for tags, ts in zip(done["tags"], done["timestamp"], strict=True)}

    # ------------------------------------------------------------------ the record

    def record(self, study: Any, trial: Any) -> dict[str, Any]:
        """The ledger record of one finished trial (with its ``import_key``), not yet stored."""
        state = STATES.get(trial.state.name)
        if state is None:
            raise ValidationError(
                f"trial {trial.number} of study {study.study_name!r} is {trial.state.name}, not finished",
                [(None, "trial", trial.state.name)],
            )
        values: Sequence[float] | None = trial.values if state == "complete" else None
        if values is not None and len(values) != len(self.metrics):
            raise ValidationError(
                f"study {study.study_name!r} has {len(values)} objective(s) but metric names "
                f"{len(self.metrics)}: {list(self.metrics)!r}", [(None, "metric", "count")],
            )
        core, custom, attr_tags = user_attr_fields(trial.user_attrs, self.metrics, self._warned)
        for name, value in zip(self.metrics, values or (), strict=False):
            (core if name in CORE_METRICS else custom)[name] = value
        tags = {**attr_tags, **self.tags, STUDY_TAG: study.study_name, TRIAL_TAG: str(trial.number),
                TRIAL_STATE_TAG: state}
        finished = _finished(trial)
        return {
            "model_name": self.model_name, "ticker": self.ticker, **core, "metrics": custom or None,
            "params": {**self.params, **trial.params} or None, "tags": tags, "notes": self.notes,
            "timestamp": finished.isoformat(),
            "import_key": trial_key(study.study_name, trial.number, self.ticker, self.model_name,
                                    trial.datetime_start),
        }

    def _log(self, rows: list[dict[str, Any]], studies: list[Any]) -> int:
        if not rows:
            return 0
        self._register(studies[0])
        keys = [row.pop("import_key") for row in rows]
        return self.ledger.log_many(rows, import_keys=keys)

    def _register(self, study: Any) -> None:
        """Check ``study``'s directions against the ledger's and register each custom
        objective metric the ledger has no direction for, in the study's direction (so
        ``best()`` tracks it). The ledger's directions are read once per callback."""
        with self._lock:
            if self._directions is None:
                self._directions = dict(self.ledger.metric_directions())
            known = self._directions
            for name, direction in zip(self.metrics, study.directions, strict=False):
                maximize = direction.name == "MAXIMIZE"
                if name not in known:
                    self.ledger.register_metric(name, maximize)
                    known[name] = maximize
                elif known[name] != maximize:
                    raise ValidationError(
                        f"study {study.study_name!r} {'maximizes' if maximize else 'minimizes'} "
                        f"metric {name!r}, which this ledger ranks "
                        f"{'higher' if known[name] else 'lower'}-is-better: log the objective "
                        f"under a metric of the study's direction (e.g. metric='neg_{name}' or "
                        f"a new name), or make the study {'maximize' if known[name] else 'minimize'}",
                        [(None, "metric", name)],
                    )
