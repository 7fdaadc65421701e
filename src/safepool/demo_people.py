"""The demo's people at work, once synthetic Espoo is catalogued (safepool.demo runs them): the
users and each holder's steward, the permits asked for and approved while the registers' data are
still being made, the holders' checks and releases,
the pool build, the analytic review, the study and its release, the city's own use beside it,
and the summary the demo prints.

Kept apart from safepool.demo because it loads the Session, the analyses and the report
(seconds of CPU): the demo imports it while synthesis runs in a process of its own."""

from __future__ import annotations

import os
import secrets
import warnings
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from importlib.resources import files
from pathlib import Path
from queue import Empty

import yaml

from safepool.beside import Ready, yielding
from safepool.cli.render import rows_in_words
from safepool.demo import (
    CITY_INSIGHTS,
    CITY_PERMIT,
    CITY_STARTED,
    CITY_WAITED,
    DEMO_PERMIT,
    DEMO_STUDY,
    DEMO_USERS,
    HOLDER_STEWARDS,
    LINKAGE_AUTHORITY,
    RELEASE_CONTEXT,
    SIGNERS,
    SYNTHETIC,
    Summary,
    Synthesis,
    demo_request,
)
from safepool.faults import Unavailable
from safepool.governance.alerts import UNUSUAL_HOURS, Alert, AlertSettings
from safepool.governance.assessment import ApprovalRole
from safepool.governance.context import METADATA_DIR
from safepool.governance.holders import Release
from safepool.governance.permits import Permit
from safepool.governance.settings import GovernanceSettings, PasswordHashing, save_settings
from safepool.registers.check import RegisterCheck
from safepool.reports.study_report import PDF_NAME
from safepool.session import Session, connect, create_first_admin
from safepool.study.run import EstimandWarning, StudyResult
from safepool.workspace import Workspace

# argon2 hashes a password outside Python's interpreter lock: the demo adds its users two at a time.
TWO_AT_A_TIME = 2


def make_users(workspace: Workspace) -> dict[str, str]:
    """Demo users with random passwords, kept in the steward zone (add_users), each holder's
    steward assigned to its holder (assign_stewards)."""
    passwords = add_users(workspace)
    assign_stewards(workspace, passwords)
    return passwords


def add_users(workspace: Workspace) -> dict[str, str]:
    """Demo users with random passwords, kept (mode 0600) in the steward zone; the first admin
    adds the others through the Session. Nothing here reads the registers, so the demo adds them
    while synthesis runs.

    Each password is a random 96-bit token, which no stolen hash gives away at any argon2 cost,
    and sits in the clear in the steward zone anyway: the demo workspace hashes with OWASP's
    floor (`password_hashing: owasp_minimum` in its governance settings), a seventh of the CPU of
    the default that protects people's own passwords in a real workspace."""
    save_settings(workspace.root / METADATA_DIR, GovernanceSettings(password_hashing=PasswordHashing.owasp_minimum))
    passwords = {name: secrets.token_urlsafe(12) for name in DEMO_USERS}
    path = workspace.steward_dir / "demo-users.yaml"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        yaml.safe_dump(passwords, handle)
    create_first_admin(workspace.root, "demo.admin", passwords["demo.admin"])
    with connect(workspace.root, user="demo.admin", password=passwords["demo.admin"]) as admin, \
            ThreadPoolExecutor(TWO_AT_A_TIME) as adding:
        others = [name for name in DEMO_USERS if name != "demo.admin"]
        list(adding.map(lambda name: admin.add_user(name, passwords[name], *map(list, DEMO_USERS[name])), others))
    return passwords


def assign_stewards(workspace: Workspace, passwords: Mapping[str, str]) -> None:
    """Each holder's steward made the steward of its holder, as the catalogue names it (so after
    the registers are catalogued)."""
    with connect(workspace.root, user="demo.admin", password=passwords["demo.admin"]) as admin:
        for name, holder in HOLDER_STEWARDS.items():
            admin.assign_steward(name, [holder], linkage_authority=name == LINKAGE_AUTHORITY)


class People(Mapping[str, Session]):
    """Each demo user signed in when first asked for and kept, by name: every sign-in is an argon2
    check, made slow on purpose, and the demo's people act many times."""

    def __init__(self, root: Path, passwords: dict[str, str]) -> None:
        self.root, self.passwords = root, passwords
        self.sessions: dict[str, Session] = {}

    def __getitem__(self, name: str) -> Session:
        if name not in self.sessions:
            self.sessions[name] = connect(self.root, user=name, password=self.passwords[name])
        return self.sessions[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.passwords)

    def __len__(self) -> int:
        return len(self.passwords)

    def __enter__(self) -> People:
        return self

    def __exit__(self, *_: object) -> None:
        for session in self.sessions.values():
            session.close()


def release_data(stewards: Mapping[str, Session], permit: str = DEMO_PERMIT) -> list[Release]:
    """Each register holder in the permit's scope releases its registers into it, by its own steward;
    only the stewards of holders in the scope are asked for (with `People`, only they sign in)."""
    linkage = stewards[LINKAGE_AUTHORITY]
    waiting = set(linkage.permit(permit).show().waiting)
    return [stewards[name].permit(permit).release("release", holder=holder)
            for name, scope in linkage.stewards().items() for holder in sorted(scope.holders) if holder in waiting]


def request_approved(person: Mapping[str, Session], form: str, permit_id: str) -> Permit:
    """A shipped permit request made by the analyst and approved by each role its assessment routes
    it to. A permit is decided on the catalogue, not on the data, so the demo asks for its permits
    while the registers' data are still being made."""
    permit = person["vtt.analyst1"].request_permit(demo_request(form), permit_id)
    for role in permit.assessment.approvals:
        permit = person[SIGNERS[role]].permit(permit_id).approve(role)
    return permit


def city_insights(person: Mapping[str, Session], reassessment_after_review: bool) -> list[str]:
    """The city's own use, once its permit is approved (request_approved) and the registers exist:
    released by the holders and built, then the shipped insight files (service paths, predicted
    needs, segments) run by the analyst; one line each, from the checked outputs."""
    holders = sorted({release.holder for release in release_data(person, CITY_PERMIT)})
    person[LINKAGE_AUTHORITY].permit(CITY_PERMIT).build()
    person[LINKAGE_AUTHORITY].permit(CITY_PERMIT).advance("analytic_review", "pool built and checked")
    if reassessment_after_review:
        person["espoo.privacy"].permit(CITY_PERMIT).approve(ApprovalRole.approver)
    under_permit = person["vtt.analyst1"].permit(CITY_PERMIT)
    under_permit.advance("analysis", "analytic review done")
    lines = [f"Customer information under the city's permit {CITY_PERMIT} (its registers released by "
             f"{' and '.join(holders)}), every table checked and recorded, each report waiting for a checker:"]
    for name in CITY_INSIGHTS:
        result = under_permit.insight(Path(str(files("safepool.examples").joinpath(name))))
        lines.append(f"- {result.kind}: {result.summary} (report {result.records['insight_report'].id}, for review)")
    return lines


def city_in_own_process(root: Path, passwords: dict[str, str], reassessment_after_review: bool) -> list[str]:
    """The city's use, signed in afresh in the process `Beside` started: a separate permit and
    separate people, so it runs on the machine's other core while the study runs on this one."""
    with People(root, passwords) as person:
        return city_insights(person, reassessment_after_review)


def monitoring(alerts: list[Alert]) -> str:
    """What the monitoring rules found in the demo's own log, by rule. The demo's people work whenever
    it is run, so at night or at a weekend its own accesses raise unusual_hours warnings: they are
    said to be the demo's own, and left standing, since the rules cannot tell a demo from anyone."""
    if not alerts:
        return "Monitoring rules: no alerts."
    by_rule = Counter(alert.rule for alert in alerts)
    found = ", ".join(f"{n} {rule} alert{'s' if n > 1 else ''}" for rule, n in by_rule.items())
    text = f"Monitoring rules: {found} (`safepool audit alerts`)"
    if set(by_rule) == {UNUSUAL_HOURS}:
        start, end = (t.strftime("%H:%M") for t in AlertSettings().working_hours)
        text += (f"; the demo's own accesses, made outside working hours ({start}-{end} {AlertSettings().timezone}, "
                 "Monday to Friday)")
    return text + "."


def verdicts(study: StudyResult) -> dict[str, int]:
    found: dict[str, int] = {}
    for record in study.records.values():
        found[record.verdict] = found.get(record.verdict, 0) + 1
    return found


def release_outputs(analyst: Session, checker: Session, study: StudyResult) -> Path:
    """The release path every output takes: the author asks, a checker reviews each one, then releases."""
    ids = [record.id for record in study.records.values()]
    analyst.outputs.request_release(ids, RELEASE_CONTEXT)
    for output_id in ids:
        checker.outputs.review(output_id, "approve", "checks passed; reviewed in the demo")
    return checker.outputs.release(ids)


def counts_note(study: StudyResult) -> str:
    base = study.records["cohort_flow"].counts_rounded_to
    return f"counts rounded to base {base}" if base else "exact counts"


def headline(study: StudyResult) -> str:
    """The employment effect at the study's middle horizon, as released."""
    horizon = study.study.horizons[len(study.study.horizons) // 2]
    effects = study.checked["effects"].output.public_table()
    row = effects[(effects["outcome"] == "employment") & (effects["horizon"] == horizon) & (effects["method"] == "att")]
    if row.empty or str(row.iloc[0].get("status", "shown")).startswith("suppressed"):
        return f"Headline: the employment effect {horizon} quarters after entry was suppressed by the disclosure checks"
    effect = row.iloc[0]
    return (f"Headline: entering the skills centre changed the employment rate {horizon} quarters later by "
            f"{100 * effect['estimate']:+.1f} percentage points (95% interval {100 * effect['ci_low']:+.1f} to "
            f"{100 * effect['ci_high']:+.1f}; {int(effect['n_treated']):,} clients, {counts_note(study)})")


class RegisterChecks:
    """Each register checked by its holder's own steward: as soon as synthesis says it is written,
    one at a time while the others are still being made (synthesis holds most of the memory then),
    and the rest once all are written, two at a time (as check_registers reads, whoever asks)."""

    def __init__(self, person: Mapping[str, Session]) -> None:
        linkage = person[LINKAGE_AUTHORITY]
        steward_of = {holder: name for name, scope in linkage.stewards().items() for holder in scope.holders}
        self._steward = {register.name: person[steward_of[register.holder]] for register in linkage.registers()}
        self._checked: list[str] = []
        self._checks: list[RegisterCheck] = []

    def while_written(self, synthesis: Synthesis) -> None:
        """Check each register synthesis has written, until synthesis ends."""
        while not synthesis.registers.done():
            try:
                name = synthesis.written.get(timeout=0.05)
            except Empty:
                continue
            self._checks += self._steward[name].check_registers([name])
            self._checked.append(name)

    def the_rest(self) -> list[RegisterCheck]:
        """Every register's check: those not checked yet are checked now, each steward its own."""
        rest: dict[str, list[str]] = {}
        for name, steward in self._steward.items():
            if name not in self._checked:
                rest.setdefault(steward.user, []).append(name)
        with ThreadPoolExecutor(len(rest) or 1) as checking:
            for checks in checking.map(lambda names: self._steward[names[0]].check_registers(names), rest.values()):
                self._checks += checks
        return self._checks


def with_people(
    workspace: Workspace,
    synthesis: Synthesis,
    passwords: dict[str, str],
    city_ready: Ready[list[str]] | None,
    notify: Callable[[str, str, int], None],
    *,
    persons: int,
    seed: int,
) -> Summary:
    """Everything after the catalogue exists (see the module docstring): while synthesis still
    makes the registers' data, the stewards are assigned, the people signed in, both permits asked
    for and approved, and each register checked by its holder's steward as soon as it is written;
    the city's use is started in `city_ready`, the process made ready for it, once all are written.

    The approvals and the checks run on a thread that yields to synthesis (`yielding`), the demo's
    longest path: at one priority they took a third of the cores synthesis could use (300,000
    persons synthesised in 23-26 s instead of 21-23 s)."""
    assign_stewards(workspace, passwords)
    with People(workspace.root, passwords) as person:
        analyst, steward, checker = person["vtt.analyst1"], person[LINKAGE_AUTHORITY], person["sf.checker"]

        def while_synthesising() -> tuple[Permit, Permit | None, RegisterChecks]:
            permit = request_approved(person, "permit-request.yaml", DEMO_PERMIT)
            city = request_approved(person, "permit-request-city.yaml", CITY_PERMIT) if city_ready else None
            checking = RegisterChecks(person)
            checking.while_written(synthesis)
            return permit, city, checking

        permit, city, checking = yielding(while_synthesising)
        registers = synthesis.registers.result()
        notify("linked", SYNTHETIC, 0)
        city_use = (city_ready.start(workspace.root, passwords, city.assessment.reassessment_after_review)
                    if city_ready and city else None)
        if city_use:
            notify(CITY_STARTED, "customer information", 0)
        checks = checking.the_rest()
        failing = [c for c in checks if not c.ok]
        if failing:
            raise Unavailable("register check failed: " + "; ".join(c.error or "; ".join(c.drift) for c in failing))
        releases = release_data(person)
        built = steward.permit(DEMO_PERMIT).build(progress=notify)
        steward.permit(DEMO_PERMIT).advance("analytic_review", "pool built and checked")
        if permit.assessment.reassessment_after_review:
            person["espoo.privacy"].permit(DEMO_PERMIT).approve(ApprovalRole.approver)
        under_permit = analyst.permit(DEMO_PERMIT)
        sizes, _ = under_permit.pool()  # the analytic review: what the pool holds, and its dictionary
        variables = under_permit.variables()
        under_permit.advance("analysis", "analytic review done")
        with warnings.catch_warnings():  # said in the summary instead, from the published counts
            warnings.simplefilter("ignore", EstimandWarning)
            study = under_permit.study(DEMO_STUDY, progress=lambda stage: notify(stage, "impact study", 0))
        release = release_outputs(analyst, checker, study)
        under_permit.advance("reporting", f"study report released in {release.name}")
        notify(CITY_WAITED, "customer information", 0)
        insights = city_use.result() if city_use else []
        verdict = person["demo.admin"].audit_verify()
        alerts = person["demo.admin"].audit_alerts()
        phase = under_permit.show().permit.phase.name

    linkage = built.linkage
    quarantined = {k: v for k, v in linkage.quarantined_rows_by_reason.items() if v}
    assessment = permit.assessment
    matching = study.published_matching()
    return [
        f"Synthetic Espoo: {persons:,} persons, seed {seed}, {len(registers)} registers "
        f"({', '.join(sorted({r.source.kind.value for r in registers}))} sources).",
        f"Register checks, each holder's steward its own registers: {len(checks)} sources match their data "
        f"dictionary; {sum(c.rows or 0 for c in checks):,} rows in all.",
        f"Permit {DEMO_PERMIT}: benefit {assessment.benefit_class}, risk {assessment.risk_class} "
        f"({assessment.decision_label}); approved by {', '.join(a.value for a in assessment.approvals)}; "
        f"now in phase {phase}.",
        f"Released into {DEMO_PERMIT} by each register holder's own steward before the pool was built:",
        *[f"- {release.summary()} ({release.decided_by})" for release in releases],
        f"Pool built by {LINKAGE_AUTHORITY}, Statistics Finland as the linkage authority, from what was released: "
        f"{linkage.persons_total:,} pseudonymised persons, "
        f"{linkage.persons_linked_across_registers:,} linked across registers, built in {built.seconds:.1f} s.",
        f"Analytic review by the analyst: {len(sizes)} tables of {sum(len(v) for v in variables.values())} "
        f"variables, {sum(sizes.values()):,} rows; {sizes.get('skills_centre', 0):,} skills-centre entries.",
        f"Quarantined in the steward zone: {sum(quarantined.values()):,} rows"
        + (": " + "; ".join(rows_in_words(quarantined)) + "." if quarantined else "."),
        f"Impact study, clients matched to similar eligible immigrants in the same entry quarter: "
        f"{matching.sentence() if matching else 'the share matched was suppressed by the disclosure checks.'} "
        f"Balance {'passed' if study.balance_passed else 'not passed for every covariate'} "
        f"(as published: {counts_note(study)}).",
        *([f"Warning: {matching.warning}"] if matching and matching.warning else []),
        headline(study),
        f"Outputs: {len(study.records)} published through the output register under the workspace's policy "
        f"({', '.join(f'{n} {v}' for v, n in verdicts(study).items())}), release requested by vtt.analyst1, "
        f"approved (with a comment where a person had to look) and released by sf.checker.",
        *insights,
        f"Audit log: {verdict.checked:,} records, hash chain "
        f"{'intact' if verdict.ok else 'BROKEN: ' + str(verdict.reason)}.",
        monitoring(alerts),
        ("Released report", release / study.records["report"].id / PDF_NAME),
        ("Release folder (the only way out; SHA256SUMS and MANIFEST.json)", release),
        ("Pool (pseudonyms only)", built.path),
        ("Linkage report", built.path / "linkage.json"),
        ("Registers (synthetic sources)", workspace.registers_dir),
        ("Steward zone (keys, quarantine, planted truth, demo users' passwords)", workspace.steward_dir),
    ]
