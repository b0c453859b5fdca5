"""A separate process that logs into a ledger, used by the concurrency and kill tests.

    python log_worker.py LOCATION PREFIX COUNT [--batch-every N] [--batch-size K] [--ack]

Logs COUNT records whose notes are PREFIX-<i>: every N-th record starts a log_many of K
(default 20) records. With --ack it prints each index after its log() returned (the
acknowledgement the kill tests rely on).
"""

from __future__ import annotations

import random
import sys

from perfledger import Ledger


def main() -> None:
    location, prefix, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    ack = "--ack" in sys.argv
    batch_every = int(sys.argv[sys.argv.index("--batch-every") + 1]) if "--batch-every" in sys.argv else 0
    size = int(sys.argv[sys.argv.index("--batch-size") + 1]) if "--batch-size" in sys.argv else 20
    rng = random.Random(prefix)
    led = Ledger(location)
    i = 0
    while i < count:
        if batch_every and i % batch_every == 0 and i + size <= count:
            rows = [
                {"model_name": f"M{rng.randrange(5)}", "ticker": f"T{rng.randrange(3)}",
                 "sharpe": rng.gauss(1, 1), "mse": rng.random(), "notes": f"{prefix}-{i + k}"}
                for k in range(size)
            ]
            led.log_many(rows)
            if ack:
                print("\n".join(str(i + k) for k in range(size)), flush=True)
            i += size
            continue
        led.log(f"M{rng.randrange(5)}", f"T{rng.randrange(3)}", sharpe=rng.gauss(1, 1),
                mse=rng.random(), drawdown=-rng.random(), win_rate=rng.random(),
                notes=f"{prefix}-{i}")
        if ack:
            print(i, flush=True)
        i += 1


if __name__ == "__main__":
    main()
