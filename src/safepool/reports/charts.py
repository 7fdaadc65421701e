"""The study report's charts, drawn from checked tables and rendered offline to inline SVG.

Each chart reads the shown (not suppressed) rows of a ShownTable, never a raw frame, and is
small enough for its page: the effects and the event study are drawn one figure per outcome, the
love plot in groups of covariates. Axis titles carry the outcome's unit (a share's effect in
percentage points); labels come from the report's label book. Vega-Lite specs are rendered by
vl-convert in process, so the report needs no JavaScript, no CDN and no network.
"""

from __future__ import annotations

import numbers
import re
from collections.abc import Sequence

import altair as alt
import pandas as pd
import vl_convert

from safepool.reports import numbers as num
from safepool.reports.labels import Labels
from safepool.reports.source import ReportError, ShownTable
from safepool.reports.tables import ESTIMATORS, BalanceRow, Scale

SMALL_WIDTH, SMALL_HEIGHT = 250, 140  # one outcome's panel, two to a row
LOVE_ROWS = 32  # covariates per love plot, so that each fits its page
FONT = "DejaVu Sans"  # the report's font: labels are measured with the font they are printed in
BLUE, ORANGE, RED = "#1f4e79", "#d9822b", "#b03a2e"
_NAMESPACE = re.compile(r'\s+xmlns(?::\w+)?="[^"]*"')


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


def _values(data: pd.DataFrame, columns: Sequence[str]) -> alt.Data:
    """Only the columns a chart draws, as plain values (numbers as floats, labels as text)."""
    records = []
    for row in data[list(columns)].itertuples(index=False):
        records.append({c: (float(v) if isinstance(v, numbers.Number) and not isinstance(v, bool) else str(v))
                        for c, v in zip(columns, row)})
    return alt.Data(values=records)


def _format(scale: Scale) -> str:
    return f",.{scale.decimals}~f"


def _effect_axis(scale: Scale) -> str:
    return f"Effect ({scale.outcome.short_unit})" if scale.outcome.short_unit else "Effect"


def _zero_line(axis: str) -> alt.Chart:
    return alt.Chart(alt.Data(values=[{"zero": 0.0}])).mark_rule(color="black", strokeWidth=0.8).encode(
        **{axis: alt.X("zero:Q") if axis == "x" else alt.Y("zero:Q")})


def effects_chart(data: pd.DataFrame, scale: Scale) -> alt.LayerChart:
    """One outcome's effect at each horizon with its interval, one colour per estimator."""
    data = _scaled(data, scale, ["estimate", "ci_low", "ci_high"])
    data["estimator"] = data["method"].astype(str).map(lambda m: ESTIMATORS.get(m, m)) \
        if "method" in data.columns else ESTIMATORS["att"]
    colour = alt.Color("estimator:N", title=None, legend=alt.Legend(orient="bottom", labelLimit=300),
                       scale=alt.Scale(range=[BLUE, ORANGE]))
    x = alt.X("horizon:O", title="Quarters after entry", axis=alt.Axis(labelAngle=0))
    y = alt.Y("ci_low:Q", title=_effect_axis(scale), axis=alt.Axis(format=_format(scale), tickCount=5),
              scale=_padded(data))
    base = alt.Chart(_values(data, ["horizon", "estimator", "estimate", "ci_low", "ci_high"]))
    bars = base.mark_rule(strokeWidth=1.5).encode(x=x, y=y, y2=alt.Y2("ci_high:Q"), color=colour,
                                                  xOffset=alt.XOffset("estimator:N"))
    dots = base.mark_point(filled=True, size=40, opacity=1).encode(x=x, y=alt.Y("estimate:Q"), color=colour,
                                                                   xOffset=alt.XOffset("estimator:N"))
    return alt.layer(bars, dots, _zero_line("y")).properties(width=SMALL_WIDTH, height=SMALL_HEIGHT)


def event_study_chart(data: pd.DataFrame, scale: Scale, gaps: Sequence[float] = ()) -> alt.LayerChart:
    """One outcome's effect by quarter from entry: interval band, estimates, zero line, entry marked.
    A quarter in `gaps` (suppressed) breaks the line and the band rather than being bridged."""
    data = _scaled(data, scale, ["estimate", "ci_low", "ci_high"]).sort_values("horizon")
    horizons = data["horizon"].to_numpy(float)
    data["run"] = [str(sum(1 for gap in gaps if gap < h)) for h in horizons]
    x = alt.X("horizon:Q", title="Quarters from entry", axis=alt.Axis(tickMinStep=1, values=_ticks(data["horizon"])))
    base = alt.Chart(_values(data, ["horizon", "estimate", "ci_low", "ci_high", "run"]))
    band = base.mark_area(opacity=0.22, color=BLUE).encode(
        x=x, y=alt.Y("ci_low:Q", title=_effect_axis(scale), axis=alt.Axis(format=_format(scale), tickCount=5),
                     scale=_padded(data)), y2=alt.Y2("ci_high:Q"), detail=alt.Detail("run:N"))
    line = base.mark_line(point=alt.OverlayMarkDef(size=18, color=BLUE), color=BLUE).encode(
        x=x, y=alt.Y("estimate:Q"), detail=alt.Detail("run:N"))
    alone = data.loc[data.groupby("run")["horizon"].transform("size") == 1]  # a band needs two quarters
    if not alone.empty:
        line = alt.layer(line, alt.Chart(_values(alone, ["horizon", "ci_low", "ci_high"])).mark_rule(
            color=BLUE, opacity=0.5, strokeWidth=2).encode(x=alt.X("horizon:Q"), y=alt.Y("ci_low:Q"), y2=alt.Y2("ci_high:Q")))
    entry = alt.Data(values=[{"horizon": 0.0, "label": "entry"}])
    marker = alt.Chart(entry).mark_rule(color=RED, strokeDash=[4, 3]).encode(x=alt.X("horizon:Q"))
    label = alt.Chart(entry).mark_text(align="left", dx=3, color=RED, fontSize=9).encode(
        x=alt.X("horizon:Q"), y=alt.value(8), text=alt.Text("label:N"))
    return alt.layer(band, _zero_line("y"), marker, label, line).properties(width=SMALL_WIDTH, height=SMALL_HEIGHT)


def love_plots(rows: Sequence[BalanceRow], smd_limit: float | None) -> list[alt.LayerChart]:
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
        y = alt.Y("covariate:N", sort=names, title=None, axis=alt.Axis(labelLimit=330, labelFontSize=9))
        colour = alt.Color("stage:N", title=None, sort=["before matching", "after matching"],
                           scale=alt.Scale(range=[ORANGE, BLUE]), legend=alt.Legend(orient="bottom"))
        dots = alt.Chart(part).mark_point(filled=True, size=36).encode(
            y=y, x=alt.X("smd:Q", title="Standardised mean difference"), color=colour)
        layers = [_zero_line("x"), dots]
        if smd_limit is not None:
            limits = alt.Data(values=[{"limit": -smd_limit}, {"limit": smd_limit}])
            layers.insert(0, alt.Chart(limits).mark_rule(color="#777", strokeDash=[3, 3]).encode(x=alt.X("limit:Q")))
        charts.append(alt.layer(*layers).properties(width=250, height=14 * len(names)))
    return charts


def forest_plot(shown: ShownTable, labels: Labels, scale: Scale) -> alt.LayerChart | None:
    """Subgroup effects: one row per subgroup level, its interval and the zero line."""
    data = drawn_rows(shown, ["subgroup", "level", "estimate", "ci_low", "ci_high"], ["estimate", "ci_low", "ci_high"])
    if data.empty:
        return None
    data = _scaled(data, scale, ["estimate", "ci_low", "ci_high"])
    data["group"] = [f"{labels.subgroup(str(s))}: {labels.level(str(s), str(v))}"
                     for s, v in zip(data["subgroup"], data["level"])]
    y = alt.Y("group:N", title=None, sort=None, axis=alt.Axis(labelLimit=330, labelFontSize=9))
    x = alt.X("ci_low:Q", title=_effect_axis(scale), axis=alt.Axis(tickCount=5, format=_format(scale)),
              scale=_padded(data))
    base = alt.Chart(_values(data, ["group", "estimate", "ci_low", "ci_high"]))
    bars = base.mark_rule(strokeWidth=1.5, color=BLUE).encode(y=y, x=x, x2=alt.X2("ci_high:Q"))
    dots = base.mark_point(filled=True, size=40, color=BLUE, opacity=1).encode(y=y, x=alt.X("estimate:Q"))
    return alt.layer(bars, dots, _zero_line("x")).properties(width=260, height=max(60, 20 * len(data)))


def to_svg(chart: alt.TopLevelMixin) -> str:
    """The chart as an <svg> element to inline in HTML (namespace declarations dropped: HTML needs none)."""
    spec = chart.to_dict(validate=False)
    config = spec.setdefault("config", {})
    # the report's look, set in the spec: altair's configure_* would copy the whole chart once each
    config["view"] = {**config.get("view", {}), "strokeWidth": 0.5}
    config.update(axis={"labelFontSize": 9, "titleFontSize": 9}, font=FONT, legend={"labelFontSize": 9})
    svg = vl_convert.vegalite_to_svg(spec)
    return _NAMESPACE.sub("", svg[svg.index("<svg"):])


def _padded(data: pd.DataFrame) -> alt.Scale:
    """A y scale that holds every interval with room above and below, and zero."""
    low = min(float(data["ci_low"].min()), float(data["estimate"].min()), 0.0)
    high = max(float(data["ci_high"].max()), float(data["estimate"].max()), 0.0)
    room = 0.06 * (high - low) or 1.0
    return alt.Scale(domain=[low - room, high + room], nice=True)


def _ticks(horizons: pd.Series) -> list[int]:
    low, high = int(horizons.min()), int(horizons.max())
    step = 2 if high - low > 12 else 1
    return [h for h in range(low, high + 1) if h % step == 0]
