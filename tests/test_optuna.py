"""Optuna: every trial logged, every trial counted (issue 24, item 4).

Real Optuna studies with a small objective: completed, pruned and failed trials, their
params, values, user attributes and tags checked against ``study.trials``; the Deflated
Sharpe Ratio's N counting the pruned and failed trials, checked against the paper's formula
written out here (scipy); and a study run by several worker processes at once over Optuna's
RDB storage (SQLite and PostgreSQL), then resumed and back-filled, logging each trial once.
"""

from __future__ import annotations

import math
import subprocess
import sys
from collections import Counter
from datetime import UTC
from pathlib import Path

import numpy as np
import pytest
from cli_runner import process_env
from scipy.stats import norm

from perfledger import Ledger, ValidationError

optuna = pytest.importorskip("optuna")
from perfledger.integrations.optuna import LedgerCallback, trial_key  # noqa: E402

optuna.logging.set_verbosity(optuna.logging.WARNING)
WORKER = Path(__file__).parent / "workers" / "optuna_worker.py"
GAMMA = 0.5772156649015329


def objective(trial: optuna.Trial) -> float:
    """Trials 3, 8, 13, ... are pruned; 5, 12, 19, ... raise (failed); 6 returns NaN (failed)."""
    x = trial.suggest_float("x", -2.0, 2.0)
    depth = trial.suggest_int("max_depth", 2, 8)
    trial.suggest_categorical("booster", ["gbtree", "dart"])
    trial.set_user_attr("n_periods", 252)
    trial.set_user_attr("sortino", 2.0 - x * x)
    trial.set_user_attr("fold", "walk-forward")
    trial.set_user_attr("scores", [0.1, 0.2])      # not a number: skipped
    trial.set_user_attr("flag", True)              # a bool is not a number: skipped
    trial.set_user_attr("tiny", 1e-200)            # cannot be stored: skipped
    trial.set_user_attr("sharpe", 99.0)            # the metric's column is the objective's
    if trial.number % 5 == 3:
        raise optuna.TrialPruned()
    if trial.number % 7 == 5:
        raise ValueError("diverged")
    if trial.number == 6:
        return float("nan")
    return 1.0 - x * x + depth / 20


def run_study(led: Ledger, n: int = 20, **kwargs: object) -> optuna.Study:
    study = optuna.create_study(direction="maximize", study_name="xgb-aapl",
                                sampler=optuna.samplers.RandomSampler(seed=7))
    cb = LedgerCallback(led, ticker="AAPL", model_name="XGB", **kwargs)  # type: ignore[arg-type]
    study.optimize(objective, n_trials=n, callbacks=[cb], catch=(ValueError,))
    return study


def test_every_finished_trial_is_one_record_with_its_values(ledger: Ledger) -> None:
    study = run_study(ledger, tags={"run": "nightly"}, params={"features": "v2"})
    states = Counter(t.state.name for t in study.trials)
    assert states["PRUNED"] >= 3 and states["FAIL"] >= 3 and states["COMPLETE"] >= 10
    hist = ledger.history(ticker="AAPL", include_meta=True)
    assert len(hist) == len(study.trials) == 20
    by_number = {int(r.tags["optuna_trial"]): r for r in hist.itertuples()}
    assert sorted(by_number) == list(range(20))
    for t in study.trials:
        rec = by_number[t.number]
        state = {"COMPLETE": "complete", "PRUNED": "pruned", "FAIL": "failed"}[t.state.name]
        assert rec.tags == {"optuna_study": "xgb-aapl", "optuna_trial": str(t.number),
                            "trial_state": state, "run": "nightly", "fold": "walk-forward"}
        assert rec.params == {"features": "v2", **t.params}
        assert rec.model_name == "XGB" and rec.ticker == "AAPL"
        if state == "complete":
            assert rec.sharpe == t.value
        else:
            assert math.isnan(rec.sharpe)  # no made-up value, and never the user attr's 99
        assert rec.sortino == t.user_attrs["sortino"] and rec.n_periods == 252
        expected = t.datetime_complete.astimezone().astimezone(UTC)
        assert rec.timestamp.to_pydatetime() == expected
    assert not {"scores", "flag", "tiny"} & set(hist.columns)


def test_pruned_and_failed_trials_count_in_the_deflated_sharpes_n(any_ledger: Ledger) -> None:
    ledger = any_ledger
    study = run_study(ledger)
    done = [t for t in study.trials if t.state.name == "COMPLETE"]
    n_all = len(study.trials)
    assert len(done) < n_all
    assert ledger.unscored_trials("AAPL") == n_all - len(done)
    conf = ledger.sharpe_confidence("AAPL")
    assert int(conf["n_trials"].iloc[0]) == n_all          # was len(done): unscored were ignored
    # The paper's DSR with N = every trial, V from the completed trials' Sharpes, by scipy.
    sharpes = np.array([t.value for t in done])
    var = float(np.var(sharpes, ddof=1))
    sr0_annual = math.sqrt(var) * ((1 - GAMMA) * norm.ppf(1 - 1 / n_all)
                                   + GAMMA * norm.ppf(1 - 1 / (n_all * math.e)))
    best = max(sharpes)
    sr, sr_star, t_len = best / math.sqrt(252), sr0_annual / math.sqrt(252), 252
    expected = norm.cdf((sr - sr_star) * math.sqrt(t_len - 1) / math.sqrt(1 + sr * sr / 2))
    row = conf.iloc[0]
    assert row["sharpe"] == best
    assert row["dsr"] == pytest.approx(expected, rel=1e-9)
    # Counting only the completed trials (the old N) would have flattered the winner.
    sr0_done = math.sqrt(var) * ((1 - GAMMA) * norm.ppf(1 - 1 / len(done))
                                 + GAMMA * norm.ppf(1 - 1 / (len(done) * math.e))) / math.sqrt(252)
    flattered = norm.cdf((sr - sr0_done) * math.sqrt(t_len - 1) / math.sqrt(1 + sr * sr / 2))
    assert row["dsr"] < flattered - 1e-6
    # The dashboard's leaderboard says the same N.
    import streamlit as st

    from perfledger.dashboard import data

    st.cache_data.clear()
    location = ledger.location.as_argument()
    shown = data.sharpe_confidence(location, ledger.stats()["state"], "AAPL")
    assert int(shown["n_trials"].iloc[0]) == n_all
    assert shown["dsr"].iloc[0] == pytest.approx(expected, rel=1e-9)
    # Stating n_trials below every trial tried is refused, naming it.
    with pytest.raises(ValidationError, match="n_trials"):
        ledger.sharpe_confidence("AAPL", n_trials=len(done))


def test_a_study_logged_again_adds_nothing_and_a_study_run_without_it_is_backfilled(ledger: Ledger) -> None:
    study = run_study(ledger, n=8)
    cb = LedgerCallback(ledger, ticker="AAPL", model_name="XGB")
    assert cb.log_study(study) == 0
    assert len(ledger.history()) == 8
    bare = optuna.create_study(direction="maximize", study_name="bare",
                               sampler=optuna.samplers.RandomSampler(seed=1))
    bare.optimize(objective, n_trials=6, catch=(ValueError,))
    assert cb.log_study(bare) == 6
    assert cb.log_study(bare) == 0
    assert len(ledger.history(tags={"optuna_study": "bare"})) == 6
    # The same trial for another ticker is another record (the key holds ticker and model).
    assert LedgerCallback(ledger, ticker="MSFT", model_name="XGB").log_study(bare) == 6
    assert trial_key("s", 1, "AAPL", "XGB") != trial_key("s", 1, "MSFT", "XGB")


def test_a_custom_metric_takes_the_studys_direction(ledger: Ledger) -> None:
    study = optuna.create_study(direction="minimize", study_name="loss")
    study.optimize(lambda t: (t.suggest_float("a", 0, 1) - 0.3) ** 2 + 0.01, n_trials=5,
                   callbacks=[LedgerCallback(ledger, ticker="SPY", model_name="Ridge", metric="val_loss")])
    assert ledger.metric_directions()["val_loss"] is False
    assert ledger.best("SPY")["best_val_loss"]["value"] == study.best_value


def test_a_multi_objective_study_names_each_objective(ledger: Ledger) -> None:
    study = optuna.create_study(directions=["maximize", "minimize"], study_name="mo")
    study.optimize(lambda t: (t.suggest_float("a", 0, 1), t.suggest_float("b", 0.1, 1)), n_trials=4,
                   callbacks=[LedgerCallback(ledger, ticker="SPY", model_name="M", metric=["sharpe", "mse"])])
    hist = ledger.history()
    logged = sorted(zip(hist["sharpe"], hist["mse"], strict=True))
    assert logged == sorted(tuple(t.values) for t in study.trials)


def test_bad_settings_and_refused_values(ledger: Ledger) -> None:
    with pytest.raises(ValidationError, match="metric name 'val loss'"):
        LedgerCallback(ledger, ticker="SPY", model_name="M", metric="val loss")
    with pytest.raises(ValidationError, match="ticker"):
        LedgerCallback(ledger, ticker=" SPY", model_name="M")
    study = optuna.create_study(direction="maximize", study_name="pct")
    cb = LedgerCallback(ledger, ticker="SPY", model_name="M", metric="win_rate")
    with pytest.raises(ValidationError, match=r"did you mean 0\.68"):
        study.optimize(lambda t: 68.0, n_trials=1, callbacks=[cb])
    assert ledger.history().empty
    two = optuna.create_study(directions=["maximize", "maximize"], study_name="two")
    with pytest.raises(ValidationError, match="2 objective"):
        two.optimize(lambda t: (1.0, 2.0), n_trials=1, callbacks=[LedgerCallback(ledger, ticker="SPY",
                                                                                  model_name="M")])


def _storages(tmp_path: Path, request: pytest.FixtureRequest, kind: str) -> str:
    """Optuna's RDB storage: a file, or a PostgreSQL database of its own (never the session's
    ledger database: Optuna's tables there make it another application's, which perfledger
    then refuses to open)."""
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'optuna.db'}"
    from conftest import fresh_pg_database

    made = fresh_pg_database("perfledger_optuna")
    url = made.__enter__()
    request.addfinalizer(lambda: made.__exit__(None, None, None))
    return url


@pytest.mark.slow
@pytest.mark.parametrize("storage_kind", ["sqlite", "postgres"])
def test_workers_sharing_an_rdb_storage_log_each_trial_once(
    tmp_path: Path, request: pytest.FixtureRequest, storage_kind: str
) -> None:
    storage = _storages(tmp_path, request, storage_kind)
    name = f"parallel-{storage_kind}-{tmp_path.name}"
    optuna.create_study(study_name=name, storage=storage, direction="maximize")
    ledger_dir = tmp_path / "ledger"
    Ledger(ledger_dir).close()
    procs = [subprocess.Popen([sys.executable, str(WORKER), storage, name, str(ledger_dir), "8", f"w{i}"],
                              env=process_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(3)]
    for p in procs:
        _out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    # Resumed in another process: 4 more trials, then a back-fill of the whole study.
    resumed = subprocess.run([sys.executable, str(WORKER), storage, name, str(ledger_dir), "4", "r"],
                             env=process_env(), capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    backfill = subprocess.run([sys.executable, str(WORKER), storage, name, str(ledger_dir), "0",
                               "--backfill", "b"], env=process_env(), capture_output=True, text=True,
                              timeout=300)
    assert backfill.returncode == 0, backfill.stderr
    assert backfill.stdout.strip() == "0"
    trials = optuna.load_study(study_name=name, storage=storage).trials
    assert len(trials) == 28
    led = Ledger(ledger_dir)
    hist = led.history(include_meta=True)
    numbers = Counter(int(t["optuna_trial"]) for t in hist["tags"])
    assert numbers == Counter(range(28))       # every trial, each once
    assert {t["worker"] for t in hist["tags"]} == {"w0", "w1", "w2", "r"}
    unscored = sum(t.state.name != "COMPLETE" for t in trials)
    assert led.unscored_trials("AAPL") == unscored
    if any(t.state.name == "COMPLETE" for t in trials):
        assert int(led.sharpe_confidence("AAPL")["n_trials"].iloc[0]) == 28
    led.close()


def test_a_trial_that_stopped_the_study_is_picked_up_by_log_study(ledger: Ledger) -> None:
    """Optuna runs no callback for a trial whose exception it does not catch: the study stops.
    ``log_study`` logs it afterwards (failed, counted), and nothing twice."""
    cb = LedgerCallback(ledger, ticker="AAPL", model_name="XGB")
    study = optuna.create_study(direction="maximize", study_name="crash")

    def crashing(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0.0, 1.0)
        if trial.number == 2:
            raise RuntimeError("out of memory")
        return x

    with pytest.raises(RuntimeError):
        study.optimize(crashing, n_trials=5, callbacks=[cb])
    assert len(ledger.history()) == 2 and ledger.unscored_trials("AAPL") == 0
    assert cb.log_study(study) == 1
    assert ledger.unscored_trials("AAPL") == 1
    assert ledger.history(tags={"trial_state": "failed"}, include_meta=True)["params"].tolist() == [
        study.trials[2].params]


def test_studies_sharing_a_name_are_different_studies(ledger: Ledger, tmp_path: Path) -> None:
    """Review 24 #6: a script re-run with Optuna's default in-memory storage, or a study of the
    same name in another storage, numbers its trials from 0 again; each is a new trial, logged
    once (and a back-fill of either study adds nothing)."""
    def obj(t: optuna.Trial) -> float:
        return t.suggest_float("x", 0, 1)

    cb = LedgerCallback(ledger, ticker="AAPL", model_name="XGB", metric="sharpe")
    studies = []
    for _run in range(2):   # in memory, same name: the script run twice
        st = optuna.create_study(direction="maximize", study_name="xgb-aapl")
        st.optimize(obj, n_trials=5, callbacks=[cb])
        studies.append(st)
    for i in range(2):      # two storages, each with a study named "shared"
        st = optuna.create_study(direction="maximize", study_name="shared",
                                 storage=f"sqlite:///{tmp_path / f'o{i}.db'}")
        st.optimize(obj, n_trials=3, callbacks=[LedgerCallback(ledger, ticker="AAPL", model_name="XGB")])
        studies.append(st)
    assert len(ledger.history(ticker="AAPL")) == 16
    assert int(ledger.sharpe_confidence("AAPL")["n_trials"].iloc[0]) == 16
    assert [cb.log_study(st) for st in studies] == [0, 0, 0, 0]
    # Loaded again from its storage (another process would), the trial has the same key.
    again = optuna.load_study(study_name="shared", storage=f"sqlite:///{tmp_path / 'o1.db'}")
    assert cb.log_study(again) == 0
    assert len(ledger.history(ticker="AAPL")) == 16


def test_a_direction_contradicting_the_metrics_is_refused(ledger: Ledger) -> None:
    """Review 24 #13: minimizing under "sharpe" (higher is better), or maximizing a custom
    metric another study registered lower-is-better, is refused; nothing is stored."""
    low = optuna.create_study(direction="minimize", study_name="neg")
    cb = LedgerCallback(ledger, ticker="AAPL", model_name="XGB", metric="sharpe")
    with pytest.raises(ValidationError, match=r"study 'neg' minimizes metric 'sharpe', which this "
                                              r"ledger ranks higher-is-better"):
        low.optimize(lambda t: -t.suggest_float("x", 0, 1), n_trials=2, callbacks=[cb])
    assert ledger.history().empty
    with pytest.raises(ValidationError, match="minimizes metric 'sharpe'"):
        cb.log_study(low)
    first = optuna.create_study(direction="minimize", study_name="loss")
    first.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2,
                   callbacks=[LedgerCallback(ledger, ticker="AAPL", model_name="M", metric="my_score")])
    other = optuna.create_study(direction="maximize", study_name="score")
    with pytest.raises(ValidationError, match=r"maximizes metric 'my_score'.*lower-is-better"):
        other.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2,
                       callbacks=[LedgerCallback(ledger, ticker="AAPL", model_name="M", metric="my_score")])
    assert len(ledger.history()) == 2 and ledger.metric_directions()["my_score"] is False


def test_a_user_attribute_the_ledger_refuses_is_skipped_once(
    ledger: Ledger, caplog: pytest.LogCaptureFixture
) -> None:
    """Review 24 #7: a win_rate of 55 (or a negative mse) set as a user attribute is skipped
    with one warning for the whole study; the study runs on and every trial is logged."""
    def obj(t: optuna.Trial) -> float:
        t.set_user_attr("win_rate", 55.0)
        t.set_user_attr("mse", -1.0)
        t.set_user_attr("nanv", float("nan"))
        t.set_user_attr("accuracy", 0.6)
        return t.suggest_float("x", 0, 1)

    study = optuna.create_study(direction="maximize", study_name="attrs")
    with caplog.at_level("WARNING", logger="perfledger.optuna"):
        study.optimize(obj, n_trials=6, callbacks=[LedgerCallback(ledger, ticker="AAPL", model_name="M")])
    hist = ledger.history()
    assert len(hist) == 6
    assert hist["win_rate"].isna().all() and hist["mse"].isna().all()
    assert (hist["accuracy"] == 0.6).all()
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 3, lines
    assert any("win_rate=55.0 is out of range" in line for line in lines)


def previous_release_key(study_name: str, number: int, ticker: str, model_name: str) -> str:
    """The import key the release before this one gave a trial (commit 85cc118's
    ``trial_key``): no start time."""
    import hashlib

    text = "\x00".join(("optuna", study_name, str(int(number)), ticker, model_name))
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()


def log_as_previous_release(led: Ledger, study: optuna.Study, trials: list[optuna.trial.FrozenTrial]) -> None:
    """What that release's ``log_study`` stored: the same record (its ``record`` built tags,
    values and timestamp as today's), claimed under its key."""
    cb = LedgerCallback(led, ticker="AAPL", model_name="XGB")
    rows = [cb.record(study, t) for t in trials]
    for row, t in zip(rows, trials, strict=True):
        assert row.pop("import_key") == trial_key(study.study_name, t.number, "AAPL", "XGB", t.datetime_start)
    keys = [previous_release_key(study.study_name, t.number, "AAPL", "XGB") for t in trials]
    assert led.log_many(rows, import_keys=keys) == len(trials)


def test_a_backfill_skips_trials_the_previous_release_logged(any_ledger: Ledger) -> None:
    """The trial key gained the trial's start time: a back-fill over a study the release
    before logged (under its key) stores only the trials it had not logged, while a later
    study of the same name (trials numbered from 0 again) is still another study."""
    study = optuna.create_study(direction="maximize", study_name="xgb-aapl",
                                sampler=optuna.samplers.RandomSampler(seed=3))
    study.optimize(objective, n_trials=6, catch=(ValueError,))
    log_as_previous_release(any_ledger, study, study.get_trials()[:4])
    study.optimize(objective, n_trials=3, catch=(ValueError,))  # resumed after the upgrade
    cb = LedgerCallback(any_ledger, ticker="AAPL", model_name="XGB")
    assert cb.log_study(study) == 5
    assert cb.log_study(study) == 0
    hist = any_ledger.history(include_meta=True)
    assert sorted(int(t["optuna_trial"]) for t in hist["tags"]) == list(range(9))
    # The script run again with in-memory storage: the same name, trials 0.. again, other times.
    rerun = optuna.create_study(direction="maximize", study_name="xgb-aapl",
                                sampler=optuna.samplers.RandomSampler(seed=4))
    rerun.optimize(objective, n_trials=4, catch=(ValueError,))
    assert cb.log_study(rerun) == 4
    assert cb.log_study(rerun) == 0
    assert Counter(int(t["optuna_trial"]) for t in any_ledger.history(include_meta=True)["tags"]) == Counter(
        [*range(9), *range(4)])
    # Another ticker's back-fill is its own (the previous release's keys held the ticker).
    assert LedgerCallback(any_ledger, ticker="MSFT", model_name="XGB").log_study(study) == 9
