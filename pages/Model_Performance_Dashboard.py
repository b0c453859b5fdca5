"""Model Performance Dashboard: ``streamlit run pages/Model_Performance_Dashboard.py``.

A thin entry point; the page lives in :mod:`perfledger.dashboard.app`. From a source
checkout the repository's own ``src`` comes first on the path, so the page always shows the
code of the checkout it is run from.
"""

import sys
from pathlib import Path

_SRC = Path(__file__).resolve().parents[1] / "src"
if (_SRC / "perfledger").is_dir() and str(_SRC) not in sys.path:
    sys.path.insert(0, str(_SRC))

from perfledger.dashboard.app import main  # noqa: E402

main()
