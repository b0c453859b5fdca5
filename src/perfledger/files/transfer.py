"""Moving a whole ledger from one store to another (an embedded ledger into PostgreSQL).

The copy carries every record exactly (timestamps to the microsecond, custom metrics, params,
tags), the registered metric directions, and therefore the same best models and leaderboard.
It runs as ONE transaction on the target: an interrupted copy leaves the target as it was,
so it can simply be run again. The target must be empty, so a second run never duplicates.
The source is read from a snapshot that takes no write lock: loggers keep logging into it
while a long copy runs (they are simply not part of the copy). A ledger copied onto itself
is refused at once.
Text holding a NUL character (a note written by a release that still accepted one) is refused
with one line naming the record and the field: PostgreSQL text cannot hold it, and storing it
altered would not be a faithful copy. The copy is one transaction, so nothing is written.
Records the source cleared and did not purge travel too, each clear as it was (its time, its
records exactly): the copy is the ledger moved, so a clear made before the move can still be
restored (or purged) after it.
It works on stores (and the target's mirror files, when it keeps them), not on Ledgers.
The target's mirror files take part in its one transaction
(:mod:`perfledger.mirrors.transaction`): a copy that fails part-way leaves them as they were
too, so a rerun copies into an empty ledger again.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

from ..errors import ValidationError
from ..mirrors.seed_files import NoMirrors
from ..records.timestamps import format_ts
from ..records.validation import has_nul

if TYPE_CHECKING:
    from ..mirrors.seed_files import Mirrors
    from ..records.batch import Batch
    from ..store.base import Store


def copy_store(
    source: Store, target: Store, target_mirrors: Mirrors | None = None, *, chunk: int = 50_000
) -> int:
    """Copy every record of ``source`` into the empty ``target``, and the records it keeps
    from its clears; returns how many records were copied (the kept ones not counted)."""
    if source.identity() == target.identity():
        raise ValidationError(
            "the target is the source ledger itself; copy into another, empty ledger",
            [(None, "target", "same as source")],
        )
    held = target.stats()["records"]
    if held:
        raise ValidationError(
            f"the target already holds {held} records; copy into an empty ledger (or clear it first)",
            [(None, "target", "not empty")],
        )
    directions = source.directions()
    known = target.directions()
    mirrors = target_mirrors if target_mirrors is not None else NoMirrors()
    copied = 0
    with source.snapshot() as src_tx, target.writing() as dst_tx, mirrors.transaction(dst_tx) as m:
        for name, higher in directions.items():
            if name not in known:
                dst_tx.register_metric(name, higher)
        for _ids, batch in src_tx.iter_batches(chunk):
            _refuse_nul(batch, copied)
            m.insert(batch)
            copied += len(batch)
        for clear, group in itertools.groupby(src_tx.iter_cleared(chunk), key=lambda c: (c[0], c[1])):
            dst_tx.keep_cleared(clear[1], (batch for _id, _at, batch in group))
        m.write_best()
    return copied


def _refuse_nul(batch: Batch, before: int) -> None:
    """Raise ValidationError naming the first record of ``batch`` whose text holds a NUL.

    Tickers and model names have always refused control characters; notes (and params/tags
    before schema v2) could hold one."""
    columns = {"notes": batch.notes, "params": batch.params, "tags": batch.tags}
    for name, values in columns.items():
        for i, value in enumerate(values):
            if value and has_nul(value):
                when = format_ts(batch.ts_us[i])
                raise ValidationError(
                    f"record {before + i + 1} ({batch.ticker[i]}, {batch.model_name[i]}, {when}): "
                    f"{name} contains a NUL character, which PostgreSQL cannot store and perfledger "
                    "no longer accepts; nothing was copied",
                    [(before + i, name, "contains a NUL character")],
                )
