"""One research process of a team, for tests/test_pg_connections.py:

    python pg_team_worker.py URL PREFIX COUNT READY_FILE GO_FILE

Opens a Ledger on URL and reads (so that both of its connections exist), says it is ready
(creates READY_FILE), waits for GO_FILE, then logs COUNT single records (notes PREFIX-<i>),
reading history, best and a leaderboard now and then, and exits 0; any error is printed and
the exit code is 1.
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

from perfledger import Ledger


def main() -> int:
    url, prefix, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    ready, go = Path(sys.argv[4]), Path(sys.argv[5])
    rng = random.Random(prefix)
    led = Ledger(url)
    try:
        led.history(ticker="T0")
        led.best()
        ready.touch()
        while not go.exists():
            time.sleep(0.01)
        for i in range(count):
            led.log(f"M{rng.randrange(6)}", f"T{rng.randrange(4)}", sharpe=round(rng.gauss(1, 1), 6),
                    mse=round(rng.random(), 6), drawdown=-round(rng.random(), 6),
                    win_rate=round(rng.random(), 6), notes=f"{prefix}-{i}")
            if i % 25 == 24:
                led.history(ticker=f"T{rng.randrange(4)}")
                led.leaderboard(f"T{rng.randrange(4)}")
                led.best()
    except Exception as exc:
        print(f"{prefix}: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        led.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
