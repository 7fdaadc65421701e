"""The demo end to end: what it writes outside steward/ and registers/ holds nothing identifying,
and who checked what."""

import pytest

from privacy_scan import find_identifiers
from safepool.governance.context import Governance
from safepool.registers.sources import Scan, open_register
from safepool.synth._catalogue import REGISTER_NAMES
from safepool.workspace import Workspace


@pytest.fixture(scope="module")
def demo(cli_demo):
    root, output = cli_demo  # `safepool demo --persons 2000 --seed 3` (tests/conftest.py)
    return Workspace.open(root), output


def identifying_values(workspace: Workspace) -> list[str]:
    """Every identity code as written in every source, plus full names and street addresses."""
    values: set[str] = set()
    for register in workspace.catalogue().registers:
        columns = {"code": register.identity_column}
        if register.name == "population":
            columns |= {"first": "etunimi", "last": "sukunimi", "address": "lahiosoite"}
        with open_register(workspace, register) as reader:
            for batch in reader.scan(Scan(columns=columns)):
                rows = batch.to_pydict()
                values.update(c for c in rows["code"] if c)
                values.update("".join(c.split()).upper() for c in rows["code"] if c)
                if "first" in rows:
                    values.update(f"{f} {s}" for f, s in zip(rows["first"], rows["last"]))
                    values.update(rows["address"])
    return sorted(values)


def test_demo_says_what_it_did_and_where(demo):
    workspace, output = demo
    assert f"{len(REGISTER_NAMES)} registers" in output and "Pool built by sf.steward" in output
    assert "Released into SKILLS-DEMO by each register holder's own steward" in output
    assert "Customer information under the city's permit" in output
    assert all(f"- {kind}: " in output for kind in ("paths", "need", "segments"))
    assert str(workspace.pool_dir / "SKILLS-DEMO") in output


@pytest.fixture(scope="module")
def identifying(demo) -> list[str]:
    return identifying_values(demo[0])


def test_nothing_identifying_outside_the_steward_zone(demo, identifying):
    workspace, output = demo
    assert len(identifying) > 4000  # codes, names and addresses were really collected
    assert find_identifiers(workspace.root, identifying) == []
    assert not [value for value in identifying if value in output]


def test_pool_holds_every_register_keyed_by_pseudonym(demo):
    from safepool.pool import access

    workspace, _ = demo
    from safepool.demo import demo_request

    sizes = access.table_sizes(workspace.pool_dir, "SKILLS-DEMO")
    assert set(sizes) == set(demo_request().data.sources)  # every register the permit names
    con = access.connect(workspace.pool_dir, "SKILLS-DEMO")
    for table in sizes:
        first = con.execute(f'SELECT column_name FROM (DESCRIBE "{table}") LIMIT 1').fetchall()[0][0]
        assert first == "pid"


def test_the_scan_does_find_a_planted_leak(identifying, tmp_path):
    """The scan above would find a code in a text file and a name inside a database's pages (planted
    in a folder laid out like a workspace, so the shared demo stays as it was made)."""
    import duckdb

    code, name = identifying[0], next(v for v in identifying if " " in v and not v[0].isdigit())
    (tmp_path / "pool").mkdir()
    (tmp_path / "pool" / "leak.txt").write_text(f"oops {code}")
    con = duckdb.connect(str(tmp_path / "leak.duckdb"))
    con.execute("CREATE TABLE t AS SELECT ? AS who FROM range(5000)", [name])
    con.close()
    found = {needle for _, needle in find_identifiers(tmp_path, identifying)}
    assert {code, name} <= found


def released_folder(workspace: Workspace):
    folders = sorted((workspace.root / "release" / "SKILLS-DEMO").iterdir())
    assert len(folders) == 1
    return folders[0]


def test_demo_ends_with_its_study_released_through_review(demo):
    import hashlib
    import json

    workspace, output = demo
    folder = released_folder(workspace)
    assert "Headline:" in output and str(folder) in output
    manifest = json.loads((folder / "MANIFEST.json").read_text())
    listed = {line.split("  ", 1)[1]: line.split("  ", 1)[0]
              for line in (folder / "SHA256SUMS").read_text().splitlines()}
    assert any(name.endswith("study-report.pdf") for name in listed)
    for name, digest in listed.items():
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest
    text = json.dumps(manifest)
    assert "sf.checker" in text and "vtt.analyst1" in text


def test_no_pseudonym_leaves_the_pool(demo):
    import duckdb

    from privacy_scan import decoded_text

    workspace, output = demo
    con = duckdb.connect(str(workspace.pool_dir / "SKILLS-DEMO" / "pool.duckdb"), read_only=True)
    # the number's digits, which the 19-digit form shown to people holds too
    pids = {str(row[0]) for row in con.sql("SELECT DISTINCT pid FROM population").fetchall()}
    con.close()
    written = [p for p in (workspace.root / "outputs").rglob("*") if p.is_file()]
    written += [p for p in released_folder(workspace).rglob("*") if p.is_file()]
    assert any(p.suffix == ".pdf" for p in written)
    for path in written:
        data, text = path.read_bytes(), decoded_text(path)
        assert not [pid for pid in pids if pid.encode() in data or pid in text], path.name
    assert not [pid for pid in pids if pid in output]


def test_the_demo_hashes_its_random_passwords_at_owasps_floor(demo):
    """Its passwords are random tokens in the steward zone; the default profile stays for people's own."""
    from safepool.governance import settings as settings_module
    from safepool.governance.context import Governance
    from safepool.governance.settings import PasswordHashing

    workspace, _ = demo
    governance = Governance.open(workspace.root)
    assert governance.settings.password_hashing == PasswordHashing.owasp_minimum
    with governance.users.engine.connect() as con:
        costs = {stored.split("$")[3] for stored in con.exec_driver_sql("SELECT password_hash FROM users").scalars()}
    floor = settings_module.HASHERS[PasswordHashing.owasp_minimum]  # the lowest cost if tests/governed.py set it
    assert costs == {f"m={floor.memory_cost},t={floor.time_cost},p={floor.parallelism}"}


def test_each_register_is_checked_once_by_its_own_holders_steward(demo):
    """The demo checks each register as synthesis writes it, and the rest once it ends: every
    register exactly once, each by the steward of the holder the catalogue names."""
    workspace, _ = demo
    governance = Governance.open(workspace.root)
    scopes = governance.holders.assignments()
    holder = {register.name: register.holder for register in workspace.catalogue().registers}
    checked = [(name, record.actor) for record in governance.audit.records(action="registers_check")
               for name in (record.target or "").split(",")]
    assert sorted(name for name, _ in checked) == sorted(holder)
    assert all(holder[name] in scopes[actor].holders for name, actor in checked)
