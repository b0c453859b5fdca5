"""The dashboard shows stored names as text, never as Markdown, LaTeX or HTML, and never
shows a password: driven headlessly with AppTest, the Markdown bodies rendered to HTML with
markdown-it (CommonMark, as Streamlit's renderer) to see what a reader would see."""

from __future__ import annotations

import html
from pathlib import Path

import pytest
import sqlalchemy as sa

pytest.importorskip("streamlit")
pytest.importorskip("plotly")
pytest.importorskip("markdown_it")

from helpers import start_page
from streamlit.testing.v1 import AppTest

from perfledger import Ledger
from perfledger.dashboard.formatting import md, md_code

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "src" / "perfledger" / "dashboard" / "streamlit_app.py")
NAMES = ["_ES_F_", "**bold**", "`tick`", "<b>x</b>", "$x$", "[a](http://e.org)", "# h", "1. one", "a\\_b",
         ":red[x]", "&lt;"]


def rendered_text(markdown: str) -> str:
    """What a reader sees: the Markdown rendered, tags dropped, entities decoded."""
    import re

    import markdown_it

    page = markdown_it.MarkdownIt("commonmark").render(markdown)
    return html.unescape(re.sub(r"<[^>]+>", "", page)).strip()


@pytest.mark.parametrize("name", NAMES)
def test_md_shows_the_text_itself(name: str) -> None:
    assert rendered_text(md(name)) == name
    assert rendered_text(f"x {md_code(name)} y") == f"x {name} y"
    assert "$" not in md(name).replace("\\$", "")  # no unescaped dollar: Streamlit's LaTeX


def bodies(at: AppTest) -> list[str]:
    out = []
    for kind in ("markdown", "caption", "subheader", "info", "warning", "success", "error"):
        out += [str(e.value) for e in getattr(at, kind)]
    return out


def test_page_shows_names_literally(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    loc = tmp_path / "ledger"
    monkeypatch.setenv("PERFLEDGER_URL", str(loc))
    monkeypatch.delenv("PERFLEDGER_READ_ONLY", raising=False)
    ticker, model = "_ES_F_", "<b>x</b> $x$ **m**"
    with Ledger(loc) as led:
        for i in range(40):
            led.log(model, ticker, sharpe=2.0 - i / 20 if i > 25 else 2.0, notes="[n](x)")
            led.log("Other_model_", ticker, sharpe=1.0)
    at = start_page()
    texts = bodies(at)
    # The ticker heads the tab, escaped: rendered it is the ticker, not italic "ES_F".
    assert md(ticker) in [str(s.value) for s in at.subheader]
    assert rendered_text(md(ticker)) == ticker
    shown = [rendered_text(t) for t in texts]
    assert any(model in s for s in shown), shown  # the decay badge / DSR note name the model
    raw = " ".join(texts)
    assert "<b>x</b>" not in raw and "**m**" not in raw and " $x$" not in raw


def test_header_never_shows_a_password(pg_server_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    url = sa.make_url(pg_server_url)
    with Ledger(pg_server_url) as led:
        led.clear()
        led.log("LSTM", "AAPL", sharpe=1.0)
    for secret_url in (url.set(password="s3cretPW"), url.update_query_dict({"password": "s3cretPW"})):
        monkeypatch.setenv("PERFLEDGER_URL", secret_url.render_as_string(hide_password=False))
        at = AppTest.from_file(APP, default_timeout=90)
        at.run()
        assert not at.exception, at.exception
        texts = bodies(at) + [str(c.value) for c in at.sidebar.caption]
        assert any(t.startswith("Ledger: `postgresql") for t in texts), texts
        assert not any("s3cretPW" in t for t in texts)


def test_chart_names_and_titles_are_not_plotly_markup(tmp_path: Path) -> None:
    from perfledger.dashboard import charts

    model = "<b>x</b> 100%{y}"
    with Ledger(tmp_path / "l") as led:
        for i in range(5):
            led.log(model, "<i>T</i>", sharpe=float(i))
        frame = led.history()
    fig, _ = charts.time_series_figure(frame, "sharpe", title="Sharpe · <i>T</i>", flagged=frozenset({model}))
    assert fig.data[0].name == "&lt;b&gt;x&lt;/b&gt; 100&#37;{y}" + charts.DECAYING
    assert "%{y}" not in fig.data[0].hovertemplate.replace("%{y:", "")
    assert fig.layout.title.text == "Sharpe · &lt;i&gt;T&lt;/i&gt;"


def test_category_labels_are_not_plotly_markup(tmp_path: Path) -> None:
    """Model names on a bar chart's or heatmap's category axis, and param values naming the
    boxes of the experiments chart, are tick labels: Plotly renders ``<b>`` in them too."""
    import pandas as pd

    from perfledger.dashboard import charts
    from perfledger.dashboard.formatting import model_metric_means

    model, shown = "<b>x</b> 100%{y}", "&lt;b&gt;x&lt;/b&gt; 100&#37;{y}"
    with Ledger(tmp_path / "l") as led:
        for i in range(3):
            led.log(model, "T", sharpe=float(i), mse=0.1)
            led.log("plain", "T", sharpe=float(i) / 2, mse=0.2)
        board = led.leaderboard("T")
        dirs = led.metric_directions()
    bars = charts.comparison_figure(board, "sharpe", True)
    assert shown in list(bars.data[0].x) and model not in list(bars.data[0].x)
    heat = charts.heatmap_figure(model_metric_means(board, dirs), dirs, title="t")
    assert shown in list(heat.data[0].y) and model not in list(heat.data[0].y)
    frame = pd.DataFrame({"value": [model, model, "<i>2</i>"], "value_key": ["a", "a", "b"],
                          "sharpe": [1.0, 2.0, 3.0]})
    boxes = charts.param_comparison_figure(frame, "depth", "sharpe", True)
    assert sorted(b.name.split("<br>")[0] for b in boxes.data) == sorted([shown, "&lt;i&gt;2&lt;/i&gt;"])
