"""Peak memory of one ``Ledger.history(ticker)`` read, measured in this (child) process.

    python -m bench.history_memory LEDGER_DIR TICKER        # prints one JSON line

Why a module of its own, and three measures: ``tracemalloc`` sees Python objects and numpy
buffers but not Arrow's memory pool nor the ADBC driver's buffers (plain ``malloc``);
``pyarrow``'s pool sees only its own allocations; a process's peak RSS sees everything but
does not move when a read reuses memory an earlier read freed (the allocators keep it), and
the earlier figure in docs/benchmarks.md was "not measured" for that reason. So, after a
warm-up read of the same history (imports, connections, page cache, lazy initialisations):

* **rss**: freed memory is given back first (glibc ``malloc_trim(0)``, the Arrow pool's
  ``release_unused()``), the kernel's high-water mark is reset to the current RSS
  (``/proc/self/clear_refs`` ``5``, Linux >= 4.0), the read runs, and the figure is
  ``VmHWM`` after minus ``VmRSS`` before: every byte the read touched at its peak, whoever
  allocated it (ADBC's buffers included).
* **traced**: ``tracemalloc``'s peak during the read (Python objects, numpy/pandas buffers)
  plus the Arrow pool's peak (a proxy pool installed as the default for the read). It misses
  the ADBC driver's ``malloc``: a lower bound, reported beside the first.

The frame's own size is ``memory_usage(deep=True)`` (Arrow-backed strings counted by their
buffers).
"""

from __future__ import annotations

import ctypes
import gc
import json
import sys
from pathlib import Path


def _status(field: str) -> int:
    """A ``/proc/self/status`` size field, in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(field)


def _give_back() -> None:
    import pyarrow as pa

    gc.collect()
    pa.default_memory_pool().release_unused()
    ctypes.CDLL("libc.so.6").malloc_trim(0)


def measure(directory: str, ticker: str) -> dict[str, int]:
    import tracemalloc

    import pyarrow as pa

    from perfledger import Ledger

    led = Ledger(directory)
    frame = led.history(ticker)  # the warm-up: the same read
    frame_bytes = int(frame.memory_usage(deep=True).sum())
    rows = len(frame)
    del frame

    _give_back()
    before = _status("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")
    frame = led.history(ticker)
    rss = _status("VmHWM") - before
    del frame

    _give_back()
    proxy = pa.proxy_memory_pool(pa.default_memory_pool())
    pa.set_memory_pool(proxy)
    tracemalloc.start()
    frame = led.history(ticker)
    traced = tracemalloc.get_traced_memory()[1] + proxy.max_memory()
    tracemalloc.stop()
    assert len(frame) == rows
    led.close()
    return {"rows": rows, "frame_bytes": frame_bytes, "rss_peak": rss, "traced_peak": traced}


if __name__ == "__main__":
    print(json.dumps(measure(sys.argv[1], sys.argv[2])))
