"""The study report's charts, drawn from checked tables and rendered offline to inline SVG.

Each chart reads a ShownTable (the public cells of a checked output), never a raw frame;
suppressed rows are left out of the drawing. Vega-Lite specs are rendered by vl-convert in
process, so the report needs no JavaScript, no CDN and no network.
"""

from __future__ import annotations

import re

import altair as alt
import pandas as pd
import vl_convert

from safepool.reports.source import ReportError, ShownTable
from safepool.study.balance import Balance

WIDTH = 460
HEIGHT = 220
SMD_LIMIT = 0.1
FONT = "DejaVu Sans"  # the report's font: labels are measured with the font they are printed in
_NAMESPACE = re.compile(r'\s+xmlns(?::\w+)?="[^"]*"')


def love_plot(shown: ShownTable, smd_limit: float = SMD_LIMIT) -> alt.TopLevelMixin:
    """The balance package's love plot, drawn from the checked balance table."""
    data = drawn_rows(shown, ["stage", "covariate", "smd"], ["smd"])
    drawer = Balance(covariates=list(data["covariate"].unique()), smd_limit=smd_limit)
    drawer.table_ = data  # the plot reads only table_: here, the checked cells
    return drawer.love_plot(title="")


def event_study_plot(shown: ShownTable) -> alt.TopLevelMixin:
    """Effect by quarter from entry: confidence band, estimates, a zero line and the entry marker."""
    data = drawn_rows(shown, ["horizon", "estimate", "ci_low", "ci_high"], ["estimate", "ci_low", "ci_high"])
    return _panels(data, _event_study_panel)


def effect_by_horizon_plot(shown: ShownTable) -> alt.TopLevelMixin:
    """Effect at each horizon with its interval, one colour per estimator."""
    data = drawn_rows(shown, ["horizon", "estimate", "ci_low", "ci_high"], ["estimate", "ci_low", "ci_high"])
    return _panels(data, _horizon_panel)


def forest_plot(shown: ShownTable) -> alt.TopLevelMixin:
    """Subgroup effects as a forest plot: one row per subgroup level, interval and zero line."""
    data = drawn_rows(shown, ["subgroup", "level", "estimate", "ci_low", "ci_high"], ["estimate", "ci_low", "ci_high"])
    data["group"] = data["subgroup"].astype(str) + ": " + data["level"].astype(str)
    if "horizon" in data.columns and data["horizon"].nunique() > 1:
        data["group"] += " (quarter " + data["horizon"].astype(str) + ")"
    return _panels(data, _forest_panel)


def to_svg(chart: alt.TopLevelMixin) -> str:
    """The chart as an <svg> element to inline in HTML (namespace declarations dropped: HTML needs none)."""
    svg = vl_convert.vegalite_to_svg(chart.configure(font=FONT).to_dict())
    return _NAMESPACE.sub("", svg[svg.index("<svg"):])


def drawn_rows(shown: ShownTable, required: list[str], numeric: list[str]) -> pd.DataFrame:
    """The rows a chart draws: shown (not suppressed) cells with every number present."""
    missing = [column for column in required if column not in shown.frame.columns]
    if missing:
        raise ReportError(f"study report: output {shown.name} ('{shown.title}') lacks column(s) "
                          f"{', '.join(missing)} for its chart")
    data = shown.frame.loc[~shown.suppressed].copy()
    for column in numeric:
        data[column] = pd.to_numeric(data[column], errors="coerce")
    return data.dropna(subset=numeric).reset_index(drop=True)


def _panels(data: pd.DataFrame, panel) -> alt.TopLevelMixin:  # type: ignore[no-untyped-def]
    """One panel per outcome when the table holds several, stacked."""
    if "outcome" not in data.columns or data["outcome"].nunique() <= 1:
        return panel(data, "")
    return alt.vconcat(*[panel(part, str(outcome)) for outcome, part in data.groupby("outcome", sort=False)])


def _zero_line(axis: str) -> alt.Chart:
    return alt.Chart(pd.DataFrame({"zero": [0.0]})).mark_rule(color="black", strokeWidth=0.8).encode(
        **{axis: alt.X("zero:Q") if axis == "x" else alt.Y("zero:Q")})


def _event_study_panel(data: pd.DataFrame, title: str) -> alt.LayerChart:
    x = alt.X("horizon:Q", title="Quarters from entry", axis=alt.Axis(tickMinStep=1))
    base = alt.Chart(data)
    band = base.mark_area(opacity=0.25, color="#1f4e79").encode(x=x, y=alt.Y("ci_low:Q", title="Effect"),
                                                                y2="ci_high:Q")
    line = base.mark_line(point=True, color="#1f4e79").encode(x=x, y="estimate:Q")
    entry = pd.DataFrame({"horizon": [0], "label": ["entry"]})
    marker = alt.Chart(entry).mark_rule(color="#b03a2e", strokeDash=[4, 3]).encode(x="horizon:Q")
    label = alt.Chart(entry).mark_text(align="left", dx=4, dy=-HEIGHT / 2 + 8, color="#b03a2e").encode(
        x="horizon:Q", text="label:N")
    return alt.layer(band, _zero_line("y"), marker, label, line).properties(title=title, width=WIDTH, height=HEIGHT)


def _horizon_panel(data: pd.DataFrame, title: str) -> alt.LayerChart:
    colour = alt.Color("method:N", title="Estimator") if "method" in data.columns else alt.value("#1f4e79")
    x = alt.X("horizon:O", title="Quarters from entry", axis=alt.Axis(labelAngle=0))
    offset = {"xOffset": "method:N"} if "method" in data.columns else {}
    base = alt.Chart(data)
    bars = base.mark_rule(strokeWidth=1.5).encode(x=x, y=alt.Y("ci_low:Q", title="Effect"), y2="ci_high:Q",
                                                  color=colour, **offset)
    dots = base.mark_point(filled=True, size=60).encode(x=x, y="estimate:Q", color=colour, **offset)
    return alt.layer(bars, dots, _zero_line("y")).properties(title=title, width=WIDTH, height=HEIGHT)


def _forest_panel(data: pd.DataFrame, title: str) -> alt.LayerChart:
    y = alt.Y("group:N", title=None, sort=None, axis=alt.Axis(labelLimit=320))
    base = alt.Chart(data)
    bars = base.mark_rule(strokeWidth=1.5, color="#1f4e79").encode(y=y, x=alt.X("ci_low:Q", title="Effect", axis=alt.Axis(tickCount=5)),
                                                                   x2="ci_high:Q")
    dots = base.mark_point(filled=True, size=60, color="#1f4e79").encode(y=y, x="estimate:Q")
    height = max(60, 22 * len(data))
    return alt.layer(bars, dots, _zero_line("x")).properties(title=title, width=WIDTH - 100, height=height)
