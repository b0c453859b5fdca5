"""Script that ``streamlit run`` executes for an installed perfledger (see :mod:`.launch`).

Streamlit runs a *file*, not a module, so the package ships this tiny one; the repository's
``pages/Model_Performance_Dashboard.py`` does the same for a source checkout.
"""

from perfledger.dashboard.app import main

main()
