"""Running an insight file under its permit: analyse in the pool, publish the outputs as one
release through the output registry, then the report made of them.

The pool opens only for the tables and columns the analysis declares (the permit must cover
them; the access is audited). Nothing the analysis computes leaves except through
`publish_all`, which checks every output under the workspace policy, has the persons behind its
shown cells checked in the differencing ledger (`safepool.insight.differencing`) and records
it; the report is a document output (safepool.insight.report) written from the outputs as
checked, and needs a checker's review before release like the study's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from safepool.disclosure.kinds.base import Mitigated
from safepool.disclosure.kinds.document import Document
from safepool.disclosure.kinds.figure import Figure
from safepool.disclosure.policy import workspace_policy
from safepool.disclosure.register import OutputRecord
from safepool.features.compile import FeatureSet, load_features
from safepool.governance.context import Governance
from safepool.governance.users import Actor
from safepool.insight.analysis import Analysis, Findings, InsightContext
from safepool.insight.differencing import CellsFound, check_insight
from safepool.insight.spec import analysis_of
from safepool.one_thread import one_thread
from safepool.pool.access import dictionary, manifest, open_for_analysis
from safepool.pool.ledger_keys import ledger_keys
from safepool.query.ledger_check import opened_ledger
from safepool.reports.chart_engine import chart_engine_started

REPORT = "insight_report"


@dataclass
class InsightResult:
    """What a run published: each output as checked and its record, the report's record, and the
    run's one line (from checked outputs only)."""

    title: str
    kind: str
    checked: dict[str, Mitigated]
    records: dict[str, OutputRecord]
    summary: str


def definitions(features: FeatureSet, names: list[str]) -> list[dict[str, str]]:
    """What the report shows of each feature an analysis used: its name, definition, the source
    variables it is computed from, and its unit (from the features configuration, never the data)."""
    rows = []
    for name in dict.fromkeys(names):
        doc = features.describe(name)
        rows.append({"feature": name, "description": doc.description, "definition": doc.definition,
                     "source variables": ", ".join(doc.sources), "unit": doc.unit})
    return rows


def run_insight(pool_dir: Path, governance: Governance, actor: Actor, insight: Any,
                progress: Callable[[str], None] | None = None, features: FeatureSet | None = None) -> InsightResult:
    """The governed run of one insight file (loaded with safepool.insight.spec.load_insight)."""
    say = progress or (lambda _stage: None)
    analysis = analysis_of(insight)
    features = features or load_features()
    say("opening the pool")
    con = open_for_analysis(pool_dir, governance, actor, insight.permit, wanted=analysis.tables(features))
    try:
        context = InsightContext(con, features, dictionary(pool_dir, insight.permit), workspace_policy(governance),
                                 insight.seed, say, release=con.close)
        with one_thread():
            findings = analysis.run(context)
    finally:
        con.close()
    # a figure is drawn by the chart renderer, whose engine starts (about a second of CPU, the GIL
    # released) while the outputs are checked
    with chart_engine_started(needed=any(isinstance(o, Figure) for o in findings.outputs.values())):
        return _publish(governance, actor, insight, analysis, findings, pool_dir, features, say)


def _publish(governance: Governance, actor: Actor, insight: Any, analysis: Analysis, findings: Findings, pool_dir: Path,
             features: FeatureSet, say: Callable[[str], None]) -> InsightResult:
    """The findings published as one release under the workspace's policy, then the report made of them."""
    say("disclosure checks")
    hidden: dict[str, set[tuple]] = {}
    with opened_ledger(pool_dir, governance, actor, insight.permit, workspace_policy(governance).min_frequency) \
            as ledger:
        in_ledger = partial(check_insight, ledger, governance, actor, ledger_keys(pool_dir, insight.permit),
                            findings.persons)
        while True:  # each round hides one more shown cell at least (see CellsFound)
            try:
                published = governance.outputs.publish_all(actor, insight.permit, findings.outputs, "insight",
                                                            margins=True, hide=hidden, before_recording=in_ledger,
                                                            derived=findings.derived)
                break
            except CellsFound as found:
                for name, labels in found.cells.items():
                    for drawn in _drawing(findings.outputs, name):
                        hidden.setdefault(drawn, set()).update(labels)
    checked = {name: mitigated for name, (mitigated, _) in published.items()}
    records = {name: record for name, (_, record) in published.items()}
    say("report")
    about = {"title": insight.title, "question": insight.question, "permit": insight.permit,
             "analysis": analysis.kind, "synthetic": bool(manifest(pool_dir, insight.permit).get("synthetic")),
             "sections": [{"heading": s.heading, "text": s.text, "outputs": s.outputs} for s in findings.sections],
             "features": definitions(features, analysis.features_used()),
             "output_ids": {name: record.id for name, record in records.items()}}
    report = Document(f"Insight report: {insight.title}", {name: m.output for name, m in checked.items()},
                      layout=REPORT, about=about, notes={name: m.note for name, m in checked.items() if m.note})
    _, records[REPORT] = governance.outputs.publish(actor, insight.permit, report, "insight", REPORT)
    return InsightResult(insight.title, analysis.kind, {name: mitigated.shown() for name, mitigated in checked.items()},
                         records, analysis.summary(checked))


def _drawing(outputs: dict[str, Any], name: str) -> list[str]:
    """The output `name` and every figure drawn from its table: a cell hidden in the table is
    hidden in the chart too (an output made as it is published has none)."""
    if name not in outputs:
        return [name]
    table = outputs[name]
    return [name, *(other for other, output in outputs.items() if isinstance(output, Figure) and output.table is table)]
