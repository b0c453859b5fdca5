"""Moving a whole ledger from one store to another (an embedded ledger into PostgreSQL).

The copy carries every record exactly (timestamps to the microsecond, custom metrics, params,
tags), the registered metric directions, and therefore the same best models and leaderboard.
It runs as ONE transaction on the target: an interrupted copy leaves the target as it was,
so it can simply be run again. The target must be empty, so a second run never duplicates.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import ValidationError

if TYPE_CHECKING:
    from .ledger import Ledger


def copy_ledger(source: Ledger, target: Ledger, *, chunk: int = 50_000) -> int:
    """Copy every record of ``source`` into the empty ``target``; returns how many."""
    if target.stats()["records"]:
        raise ValidationError(
            f"target {target!r} already holds {target.stats()['records']} records; "
            "copy into an empty ledger (or clear it first)",
            [(None, "target", "not empty")],
        )
    directions = source.metric_directions()
    src_store, dst_store = source._ensure(), target._ensure()
    copied = 0
    with src_store.writing() as src_tx, dst_store.writing() as dst_tx:
        # Source: a write transaction gives one consistent snapshot on every engine.
        for name, higher in directions.items():
            if name not in target.metric_directions():
                dst_tx.register_metric(name, higher)
        mirrors = target._mirrors
        if mirrors is not None:
            mirrors.sync(dst_tx)
        from .mirrors import PreparedAppend

        for batch in src_tx.iter_batches(chunk):
            batch.ids = None
            dst_tx.insert(batch)
            if mirrors is not None:
                mirrors.append(dst_tx, PreparedAppend(batch), best_changed=False)
            copied += len(batch)
        if mirrors is not None:
            mirrors.write_best(dst_tx)
    return copied
