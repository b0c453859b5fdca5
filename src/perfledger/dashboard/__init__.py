"""The perfledger Streamlit dashboard.

Modules are small on purpose: :mod:`.data` is the only one that talks to the
:class:`~perfledger.Ledger` (cached on the ledger's ``state`` token, so another process's
write shows on the next rerun); :mod:`.charts`, :mod:`.formatting`, :mod:`.insights` and
:mod:`.forms` are pure functions (easy to unit-test, no Streamlit); :mod:`.readahead` fills
:mod:`.data`'s caches for the next tickers after a first render; :mod:`.display` adds
Streamlit column formats; :mod:`.sidebar` holds the filters and the actions that write; one
``views_*`` module draws each tab; :mod:`.app` puts them on the page; :mod:`.launch` starts
``streamlit run`` on :mod:`.streamlit_app` for an installed package.

Streamlit and Plotly are imported only by the modules that need them, so importing this
package stays cheap. Start it with :func:`perfledger.dashboard.launch.launch`.
"""

from __future__ import annotations

__all__: list[str] = []
