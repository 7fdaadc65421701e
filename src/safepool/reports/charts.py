"""The study report's charts, drawn from checked tables and rendered offline to inline SVG.

Each chart reads the shown (not suppressed) rows of a ShownTable, never a raw frame, and is
small enough for its page: the effects and the event study are drawn one figure per outcome, the
love plot in groups of covariates. Axis titles carry the outcome's unit (a share's effect in
percentage points); labels come from the report's label book. Each chart is a Vega-Lite spec
written as plain JSON data (the same spec altair wrote, without its objects: building, copying
and serialising those took longer than drawing), rendered by vl-convert in process, so the
report needs no JavaScript, no CDN and no network.
"""

from __future__ import annotations

import numbers
import re
from collections.abc import Sequence
from typing import Any

import pandas as pd

from safepool.reports import numbers as num
from safepool.reports.chart_engine import vegalite_to_svg
from safepool.reports.labels import Labels
from safepool.reports.source import ReportError, ShownTable
from safepool.reports.tables import ESTIMATORS, BalanceRow, Scale

SMALL_WIDTH, SMALL_HEIGHT = 250, 140  # one outcome's panel, two to a row
LOVE_ROWS = 32  # covariates per love plot, so that each fits its page
FONT = "DejaVu Sans"  # the report's font: labels are measured with the font they are printed in
BLUE, ORANGE, RED = "#1f4e79", "#d9822b", "#b03a2e"
# the report's look (altair's default view size kept: the specs are the ones altair wrote)
CONFIG = {"view": {"continuousWidth": 300, "continuousHeight": 300, "strokeWidth": 0.5},
          "axis": {"labelFontSize": 9, "titleFontSize": 9}, "font": FONT, "legend": {"labelFontSize": 9}}
_NAMESPACE = re.compile(r'\s+xmlns(?::\w+)?="[^"]*"')

Spec = dict[str, Any]  # a Vega-Lite spec or one of its layers


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


def per_outcome(shown: ShownTable, numeric: Sequence[str]) -> list[tuple[str, pd.DataFrame]]:
    data = drawn_rows(shown, ["outcome", "horizon", *numeric], ["horizon", *numeric])
    return [(str(name), part) for name, part in data.groupby(data["outcome"].astype(str), sort=False)]


def _scaled(data: pd.DataFrame, scale: Scale, columns: Sequence[str]) -> pd.DataFrame:
    data = data.copy()
    for column in columns:
        data[column] = data[column] * scale.outcome.factor()
    return data


def _values(data: pd.DataFrame, columns: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """Only the columns a chart draws, as plain values (numbers as floats, labels as text)."""
    records = []
    for row in data[list(columns)].itertuples(index=False):
        records.append({c: (float(v) if isinstance(v, numbers.Number) and not isinstance(v, bool) else str(v))
                        for c, v in zip(columns, row)})
    return {"values": records}


def _field(name: str, kind: str, **settings: Any) -> Spec:
    """An encoding channel on a data field (kind: quantitative, ordinal or nominal)."""
    return {"field": name, "type": kind, **settings}


def _layer(data: Spec, mark: Spec, **encoding: Spec) -> Spec:
    return {"data": data, "mark": mark, "encoding": encoding}


def _format(scale: Scale) -> str:
    return f",.{scale.decimals}~f"


def _effect_axis(scale: Scale) -> str:
    return f"Effect ({scale.outcome.short_unit})" if scale.outcome.short_unit else "Effect"


def _zero_line(axis: str) -> Spec:
    return _layer({"values": [{"zero": 0.0}]}, {"type": "rule", "color": "black", "strokeWidth": 0.8},
                  **{axis: _field("zero", "quantitative")})


def _sized(layers: list[Spec], width: int, height: int) -> Spec:
    return {"layer": layers, "height": height, "width": width}


def effects_chart(data: pd.DataFrame, scale: Scale) -> Spec:
    """One outcome's effect at each horizon with its interval, one colour per estimator."""
    data = _scaled(data, scale, ["estimate", "ci_low", "ci_high"])
    data["estimator"] = data["method"].astype(str).map(lambda m: ESTIMATORS.get(m, m)) \
        if "method" in data.columns else ESTIMATORS["att"]
    values = _values(data, ["horizon", "estimator", "estimate", "ci_low", "ci_high"])
    colour = _field("estimator", "nominal", legend={"labelLimit": 300, "orient": "bottom"},
                    scale={"range": [BLUE, ORANGE]}, title=None)
    x = _field("horizon", "ordinal", axis={"labelAngle": 0}, title="Quarters after entry")
    offset = _field("estimator", "nominal")
    y = _field("ci_low", "quantitative", axis={"format": _format(scale), "tickCount": 5}, scale=_padded(data),
               title=_effect_axis(scale))
    bars = _layer(values, {"type": "rule", "strokeWidth": 1.5}, color=colour, x=x, xOffset=offset, y=y,
                  y2={"field": "ci_high"})
    dots = _layer(values, {"type": "point", "filled": True, "opacity": 1, "size": 40}, color=colour, x=x,
                  xOffset=offset, y=_field("estimate", "quantitative"))
    return _sized([bars, dots, _zero_line("y")], SMALL_WIDTH, SMALL_HEIGHT)


def event_study_chart(data: pd.DataFrame, scale: Scale, gaps: Sequence[float] = ()) -> Spec:
    """One outcome's effect by quarter from entry: interval band, estimates, zero line, entry marked.
    A quarter in `gaps` (suppressed) breaks the line and the band rather than being bridged."""
    data = _scaled(data, scale, ["estimate", "ci_low", "ci_high"]).sort_values("horizon")
    horizons = data["horizon"].to_numpy(float)
    data["run"] = [str(sum(1 for gap in gaps if gap < h)) for h in horizons]
    values = _values(data, ["horizon", "estimate", "ci_low", "ci_high", "run"])
    x = _field("horizon", "quantitative", axis={"tickMinStep": 1, "values": _ticks(data["horizon"])},
               title="Quarters from entry")
    run = _field("run", "nominal")
    band = _layer(values, {"type": "area", "color": BLUE, "opacity": 0.22}, detail=run, x=x,
                  y=_field("ci_low", "quantitative", axis={"format": _format(scale), "tickCount": 5},
                              scale=_padded(data), title=_effect_axis(scale)),
                  y2={"field": "ci_high"})
    line = _layer(values, {"type": "line", "color": BLUE, "point": {"color": BLUE, "size": 18}}, detail=run, x=x,
                  y=_field("estimate", "quantitative"))
    alone = data.loc[data.groupby("run")["horizon"].transform("size") == 1]  # a band needs two quarters
    if not alone.empty:
        line = {"layer": [line, _layer(_values(alone, ["horizon", "ci_low", "ci_high"]),
                                       {"type": "rule", "color": BLUE, "opacity": 0.5, "strokeWidth": 2},
                                       x=_field("horizon", "quantitative"), y=_field("ci_low", "quantitative"),
                                       y2={"field": "ci_high"})]}
    entry = {"values": [{"horizon": 0.0, "label": "entry"}]}
    marker = _layer(entry, {"type": "rule", "color": RED, "strokeDash": [4, 3]}, x=_field("horizon", "quantitative"))
    label = _layer(entry, {"type": "text", "align": "left", "color": RED, "dx": 3, "fontSize": 9},
                   text=_field("label", "nominal"), x=_field("horizon", "quantitative"), y={"value": 8})
    return _sized([band, _zero_line("y"), marker, label, line], SMALL_WIDTH, SMALL_HEIGHT)


def love_plots(rows: Sequence[BalanceRow], smd_limit: float | None) -> list[Spec]:
    """Standardised mean differences before and after matching, biggest imbalance first."""
    points = []
    for row in rows:
        if row.suppressed:
            continue
        for stage, values in (("before matching", row.before), ("after matching", row.after)):
            smd = num.as_float(values.get("smd"))
            if smd is not None:
                points.append({"covariate": row.label, "stage": stage, "smd": smd})
    data = pd.DataFrame(points, columns=["covariate", "stage", "smd"])
    if data.empty:
        return []
    order = (data.loc[data["stage"] == "before matching"].assign(size=lambda d: d["smd"].abs())
             .sort_values("size", ascending=False, kind="stable")["covariate"].tolist())
    order += [c for c in dict.fromkeys(data["covariate"]) if c not in order]
    charts = []
    for start in range(0, len(order), LOVE_ROWS):
        names = order[start:start + LOVE_ROWS]
        part = _values(data.loc[data["covariate"].isin(names)], ["covariate", "stage", "smd"])
        y = _field("covariate", "nominal", axis={"labelFontSize": 9, "labelLimit": 330}, sort=names, title=None)
        colour = _field("stage", "nominal", legend={"orient": "bottom"}, scale={"range": [ORANGE, BLUE]},
                        sort=["before matching", "after matching"], title=None)
        dots = _layer(part, {"type": "point", "filled": True, "size": 36}, color=colour,
                      x=_field("smd", "quantitative", title="Standardised mean difference"), y=y)
        layers = [_zero_line("x"), dots]
        if smd_limit is not None:
            limits = {"values": [{"limit": -smd_limit}, {"limit": smd_limit}]}
            layers.insert(0, _layer(limits, {"type": "rule", "color": "#777", "strokeDash": [3, 3]},
                                    x=_field("limit", "quantitative")))
        charts.append(_sized(layers, 250, 14 * len(names)))
    return charts


def forest_plot(shown: ShownTable, labels: Labels, scale: Scale) -> Spec | None:
    """Subgroup effects: one row per subgroup level, its interval and the zero line."""
    data = drawn_rows(shown, ["subgroup", "level", "estimate", "ci_low", "ci_high"], ["estimate", "ci_low", "ci_high"])
    if data.empty:
        return None
    data = _scaled(data, scale, ["estimate", "ci_low", "ci_high"])
    data["group"] = [f"{labels.subgroup(str(s))}: {labels.level(str(s), str(v))}"
                     for s, v in zip(data["subgroup"], data["level"])]
    values = _values(data, ["group", "estimate", "ci_low", "ci_high"])
    y = _field("group", "nominal", axis={"labelFontSize": 9, "labelLimit": 330}, sort=None, title=None)
    x = _field("ci_low", "quantitative", axis={"format": _format(scale), "tickCount": 5}, scale=_padded(data),
               title=_effect_axis(scale))
    bars = _layer(values, {"type": "rule", "color": BLUE, "strokeWidth": 1.5}, x=x, x2={"field": "ci_high"}, y=y)
    dots = _layer(values, {"type": "point", "color": BLUE, "filled": True, "opacity": 1, "size": 40},
                  x=_field("estimate", "quantitative"), y=y)
    return _sized([bars, dots, _zero_line("x")], 260, max(60, 20 * len(data)))


def to_svg(chart: Spec) -> str:
    """The chart as an <svg> element to inline in HTML (namespace declarations dropped: HTML needs none)."""
    svg = vegalite_to_svg({"config": CONFIG, **chart})
    return _NAMESPACE.sub("", svg[svg.index("<svg"):])


def _padded(data: pd.DataFrame) -> Spec:
    """A y scale that holds every interval with room above and below, and zero."""
    low = min(float(data["ci_low"].min()), float(data["estimate"].min()), 0.0)
    high = max(float(data["ci_high"].max()), float(data["estimate"].max()), 0.0)
    room = 0.06 * (high - low) or 1.0
    return {"domain": [low - room, high + room], "nice": True}


def _ticks(horizons: pd.Series) -> list[int]:
    low, high = int(horizons.min()), int(horizons.max())
    step = 2 if high - low > 12 else 1
    return [h for h in range(low, high + 1) if h % step == 0]
