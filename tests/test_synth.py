"""The synthetic Espoo: determinism, identity codes and faults, the planted study, the writer."""

from __future__ import annotations

import io
import json
import re
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest

try:
    import safepool  # noqa: F401
except ImportError:  # running from a checkout without an installed package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from stdnum.fi import hetu

from safepool.registers.catalogue import SourceKind
from safepool.synth import generate, write_workspace
from safepool.synth._catalogue import REGISTER_NAMES
from safepool.workspace import Workspace

PERSONS = 8_000
SEED = 7
CODE_FAULTS = {"wrong_check_character", "lowercase", "whitespace", "temporary_code"}
HETU_LIKE = re.compile(r"\d{6}\s*[-+A-FU-Ya-fu-y]\s*\d{3}\s*[0-9A-Ya-y]")


@pytest.fixture(scope="module")
def synthetic():
    return generate(persons=PERSONS, seed=SEED)


@pytest.fixture(scope="module")
def identity_columns():
    from safepool.synth._catalogue import register_entries

    return {r.name: r.identity_column for r in register_entries()}


def _ipc_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def test_same_seed_gives_byte_identical_tables(synthetic):
    again = generate(persons=PERSONS, seed=SEED)
    assert list(again.tables) == list(synthetic.tables)
    for name, table in synthetic.tables.items():
        assert _ipc_bytes(again.tables[name]) == _ipc_bytes(table), name
    assert _ipc_bytes(again.faults) == _ipc_bytes(synthetic.faults)
    assert json.dumps(again.truth, sort_keys=True) == json.dumps(synthetic.truth, sort_keys=True)
    other = generate(persons=PERSONS, seed=SEED + 1)
    assert not other.tables["population"].equals(synthetic.tables["population"])


def test_truth_is_json_and_counts_rows(synthetic):
    text = json.dumps(synthetic.truth, allow_nan=False)
    assert not HETU_LIKE.search(text)
    truth = synthetic.truth
    assert truth["seed"] == SEED and truth["persons"] == PERSONS
    assert truth["row_counts"] == {name: t.num_rows for name, t in synthetic.tables.items()}
    for key in ("parameters", "att", "att_by_subgroup", "naive_difference", "faults", "clients",
                "selection", "effect"):
        assert key in truth


def test_population_codes_are_valid_unique_and_consistent(synthetic):
    pop = synthetic.tables["population"].to_pandas()
    codes = pop["henkilotunnus"]
    assert codes.is_unique
    assert all(hetu.is_valid(c) and hetu.compact(c) == c for c in codes)
    number = codes.str[7:10].astype(int)
    assert number.between(2, 899).all()
    assert ((number % 2 == 1) == (pop["sukupuoli"] == 1)).all()  # odd individual number = man
    birth = pd_dates(pop["syntymapaiva"])
    assert (codes.str[:6] == birth.dt.strftime("%d%m%y")).all()
    sign = codes.str[6]
    assert (sign.isin(list("-YXWVU")) == (birth.dt.year < 2000)).all()
    assert (sign.isin(list("ABCDEF")) == (birth.dt.year >= 2000)).all()
    assert (sign == "-").mean() > 0.5 and sign.isin(list("YXWVU")).any() and sign.isin(list("BCDEF")).any()


def pd_dates(series):
    import pandas as pd

    return pd.to_datetime(series)


def test_population_shape(synthetic):
    pop = synthetic.tables["population"].to_pandas()
    immigrant = pop["maahanmuuttopaiva"].notna()
    assert 0.2 < immigrant.mean() < 0.3
    assert (pop.loc[~immigrant, "syntymamaa"] == "FIN").all()
    assert (pop.loc[immigrant, "syntymamaa"] != "FIN").all()
    imm_year = pd_dates(pop.loc[immigrant, "maahanmuuttopaiva"]).dt.year
    assert imm_year.min() >= 1990 and imm_year.max() <= 2024
    assert (pd_dates(pop["syntymapaiva"]).dt.year >= 2009).mean() > 0.05  # births 2009-2024
    assert pop["kuolinpaiva"].notna().sum() > 0 and pop["poismuuttopaiva"].notna().sum() > 0
    assert set(pop["aidinkieli"]) <= {"fi", "sv", "ru", "et", "ar", "so", "en", "fa", "ku", "zh", "other"}
    assert not pop["lahiosoite"].str.contains("['\"/]").any()
    assert pop["lahiosoite"].str.match(r"^\w+ \d+( [A-F] \d+)?$").all()


def test_every_code_is_valid_or_a_recorded_fault(synthetic, identity_columns):
    faults = synthetic.faults.to_pandas()
    population = set(synthetic.tables["population"].column("henkilotunnus").to_pylist())
    missing = set(faults.loc[faults["kind"] == "missing_from_register", "true_code"])
    assert missing and not (missing & population)
    for name, table in synthetic.tables.items():
        counts = Counter(table.column(identity_columns[name]).to_pylist())
        recorded = faults[(faults["register"] == name) & faults["kind"].isin(CODE_FAULTS)]
        recorded_codes = set(recorded["identity_code"])
        for code in counts:
            if code not in recorded_codes:
                assert hetu.is_valid(code) and hetu.compact(code) == code, (name, code)
                assert code in population or code in missing, (name, code)
        for row in recorded.itertuples():
            code, true = row.identity_code, row.true_code
            assert counts[code] == row.rows, (name, row.kind)
            if row.kind == "wrong_check_character":
                assert not hetu.is_valid(code) and code[:10] == true[:10] and code != true
            elif row.kind == "lowercase":
                assert code != code.upper() and code.upper() == true
            elif row.kind == "whitespace":
                assert code != code.strip() and code.strip() == true and hetu.is_valid(code)
            elif row.kind == "temporary_code":
                assert not hetu.is_valid(code) and hetu.is_valid(code, allow_temporary=True)
                assert int(code[7:10]) >= 900 and code[:7] == true[:7]


def test_duplicates_and_truth_fault_counts(synthetic):
    faults = synthetic.faults.to_pandas()
    by_register = synthetic.truth["faults"]["by_register"]
    for (register, kind), group in faults.groupby(["register", "kind"]):
        assert by_register[register][kind] == {"codes": len(group), "rows": int(group["rows"].sum())}
    for name, table in synthetic.tables.items():
        frame = table.to_pandas()
        extra = int(frame.duplicated(keep="first").sum())
        recorded = faults[(faults["register"] == name) & (faults["kind"] == "duplicate_row")]
        assert extra == int(recorded["rows"].sum()), name
    kinds = set(faults["kind"])
    assert kinds == CODE_FAULTS | {"missing_from_register", "duplicate_row"}
    # small rates: under about 1% of the rows of any register
    for name, table in synthetic.tables.items():
        rows = faults.loc[(faults["register"] == name) & (faults["kind"] != "missing_from_register"),
                          "rows"].sum()
        assert rows <= 0.02 * table.num_rows + 5, name


def test_missing_persons_are_known_elsewhere(synthetic):
    faults = synthetic.faults.to_pandas()
    missing = set(faults.loc[faults["kind"] == "missing_from_register", "true_code"])
    employment = set(synthetic.tables["employment"].column("htun").to_pylist())
    assert missing <= employment


def test_clients_per_year_meet_the_target(synthetic):
    truth = synthetic.truth
    target = truth["clients_per_year"]
    assert target == max(20, round(600 * PERSONS / 300_000))
    assert truth["clients"]["per_year"] == {str(y): target for y in range(2019, 2025)}
    skills = synthetic.tables["skills_centre"].to_pandas()
    years = pd_dates(skills["aloituspaiva"]).dt.year.value_counts().to_dict()
    assert years == {y: target for y in range(2019, 2025)}
    quarters = pd_dates(skills["aloituspaiva"]).dt.quarter.value_counts()
    assert set(quarters.index) == {1, 2, 3, 4}
    # clients are immigrants aged 18-64 at entry (through the valid codes)
    pop = synthetic.tables["population"].to_pandas().set_index("henkilotunnus")
    joined = skills.join(pop, on="opiskelija_hetu", how="inner")
    assert len(joined) >= 0.9 * len(skills)
    assert joined["maahanmuuttopaiva"].notna().all()
    age = (pd_dates(joined["aloituspaiva"]) - pd_dates(joined["syntymapaiva"])).dt.days / 365.25
    assert age.between(17.9, 65.5).all()


def test_custom_clients_per_year():
    small = generate(persons=3_000, seed=2, clients_per_year=8)
    assert small.truth["clients"]["per_year"] == {str(y): 8 for y in range(2019, 2025)}
    assert small.tables["skills_centre"].num_rows == 48


def test_effect_zero_before_entry_and_building_after(synthetic):
    att = synthetic.truth["att"]
    h = att["horizons"]
    emp = dict(zip(h, att["employment"]))
    earn = dict(zip(h, att["earnings"]))
    assert all(emp[k] == 0.0 and earn[k] == 0.0 for k in h if k <= 0)
    early = np.mean([emp[k] for k in (1, 2, 3)])
    late = np.mean([emp[k] for k in range(8, 13)])
    assert late > early > 0
    assert 0.04 < late < 0.2
    assert np.mean([earn[k] for k in range(8, 13)]) > 0
    structural = synthetic.truth["effect"]["structural_curve"]["employment_probability"]
    assert structural[0] == 0.0
    assert structural[8] == pytest.approx(structural[12])
    assert structural[8] > structural[4] > 0
    for group in ("sex", "permit_grounds", "language_level"):
        assert synthetic.truth["att_by_subgroup"][group]


def test_naive_comparison_is_biased_downward(synthetic):
    truth = synthetic.truth
    h = truth["att"]["horizons"]
    att = dict(zip(h, truth["att"]["employment"]))
    naive = dict(zip(h, truth["naive_difference"]["employment"]))
    assert all(naive[k] < att[k] - 0.05 for k in range(0, 9))
    assert np.mean([naive[k] for k in range(-8, 0)]) < -0.2  # clients are worse off before entry


def test_clients_are_worse_off_in_the_registers(synthetic):
    """From the tables alone: before entry, clients are far more often unemployed."""
    import duckdb

    con = duckdb.connect()
    con.register("employment", synthetic.tables["employment"])
    con.register("skills", synthetic.tables["skills_centre"])
    con.register("population", synthetic.tables["population"])
    rows = con.execute("""
        with e as (
            select htun, vuosineljannes as q, ptoim from employment
            where vuosineljannes between '2017Q1' and '2018Q4'
        ), imm as (
            select henkilotunnus from population where maahanmuuttopaiva is not null
        )
        select s.opiskelija_hetu is not null as client, avg((ptoim = '12')::int) as unemployed
        from e join imm on e.htun = imm.henkilotunnus
        left join skills s on s.opiskelija_hetu = e.htun
             and s.aloituspaiva between date '2019-01-01' and date '2019-12-31'
        group by 1 order by 1
    """).fetchall()
    assert len(rows) == 2
    assert rows[1][1] > rows[0][1] + 0.15


def test_rows_stay_in_residence_and_age(synthetic):
    import duckdb

    con = duckdb.connect()
    con.register("employment", synthetic.tables["employment"])
    con.register("population", synthetic.tables["population"])
    bad = con.execute("""
        with rows as (
            select p.*, (make_date(cast(left(e.vuosineljannes, 4) as int),
                                   cast(right(e.vuosineljannes, 1) as int) * 3, 1)
                         + interval 1 month - interval 1 day)::date as quarter_end
            from employment e join population p on e.htun = p.henkilotunnus
        )
        select count(*) from rows
        where kotikuntaan_muuttopaiva > quarter_end or poismuuttopaiva <= quarter_end
           or kuolinpaiva <= quarter_end
           or date_diff('day', syntymapaiva, quarter_end) / 365.25 not between 15 and 75
    """).fetchone()[0]
    assert bad == 0


def _source_columns(workspace: Workspace, register) -> dict[str, str]:
    """Column name -> a type family ('string', 'integer', 'float', 'date') as the source holds it."""
    source = register.source
    if source.kind == SourceKind.parquet:
        schema = pq.read_schema(workspace.source_path(source))
        return {f.name: _arrow_family(f.type) for f in schema}
    if source.kind == SourceKind.csv:
        import duckdb

        con = duckdb.connect()
        path = str(workspace.source_path(source))
        described = con.execute("describe select * from read_csv(?)", [path]).fetchall()
        return {name: _duck_family(kind) for name, kind, *_ in described}
    import adbc_driver_sqlite.dbapi as sqlite_dbapi

    with sqlite_dbapi.connect(str(workspace.source_path(source))) as conn:
        with conn.cursor() as cursor:
            cursor.execute(f"select * from {source.table} limit 1000")
            table = cursor.fetch_arrow_table()
    out = {}
    for field in table.schema:
        family = _arrow_family(field.type)
        if family == "string":
            values = [v for v in table.column(field.name).to_pylist() if v is not None]
            if values and all(re.fullmatch(r"\d{4}-\d\d-\d\d", v) for v in values):
                family = "date"  # ISO text dates, as the catalogue says for SQLite
        out[field.name] = family
    return out


def _arrow_family(t: pa.DataType) -> str:
    if pa.types.is_integer(t):
        return "integer"
    if pa.types.is_floating(t):
        return "float"
    if pa.types.is_date(t) or pa.types.is_timestamp(t):
        return "date"
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_dictionary(t):
        return "string"
    return str(t)


def _duck_family(kind: str) -> str:
    kind = kind.upper()
    if kind in ("BIGINT", "INTEGER", "SMALLINT", "TINYINT", "HUGEINT"):
        return "integer"
    if kind in ("DOUBLE", "FLOAT") or kind.startswith("DECIMAL"):
        return "float"
    if kind in ("DATE", "TIMESTAMP"):
        return "date"
    return "string" if kind == "VARCHAR" else kind


def test_write_workspace_sources_match_the_catalogue(tmp_path, synthetic, identity_columns):
    workspace = Workspace.init(tmp_path / "ws")
    labels = []
    registers = write_workspace(workspace, synthetic, progress=labels.append)
    assert labels
    assert [r.name for r in workspace.catalogue().registers] == [r.name for r in registers]
    kinds = {r.name: r.source.kind for r in registers}
    assert kinds["population"] == SourceKind.parquet and kinds["benefits"] == SourceKind.csv
    assert kinds["employment_services"] == SourceKind.sqlite
    assert {SourceKind.parquet, SourceKind.csv, SourceKind.sqlite} == set(kinds.values())
    for register in registers:
        assert not Path(register.source.location).is_absolute()
        assert register.source.location.startswith("registers/")
        columns = _source_columns(workspace, register)
        assert register.identity_column in columns
        assert columns[register.identity_column] == "string"
        for column in register.direct_identifiers:
            assert column in columns
        for variable in register.variables:
            assert variable.column in columns, (register.name, variable.column)
            assert columns[variable.column] == variable.type, (register.name, variable.column)
        if register.time is not None:
            assert register.time.variable in [v.name for v in register.variables]
    # the CSV files keep the identity codes exactly, whitespace included
    benefits = pcsv.read_csv(workspace.root / "registers/kela/etuudet.csv",
                             convert_options=pcsv.ConvertOptions(column_types={"hetu": pa.string()}))
    assert benefits.column("hetu").equals(synthetic.tables["benefits"].column("hetu"))
    # planted truth only under steward/truth
    found = sorted(p.relative_to(workspace.root).as_posix() for p in workspace.root.rglob("*")
                   if p.is_file() and ("truth" in p.name or "faults" in p.name))
    assert found == ["steward/truth/faults.parquet", "steward/truth/truth.json"]
    assert json.loads((workspace.steward_dir / "truth/truth.json").read_text()) == synthetic.truth
    assert pq.read_table(workspace.steward_dir / "truth/faults.parquet").equals(synthetic.faults)
    # no temporary files left behind
    assert not [p for p in workspace.root.rglob("*.tmp*")]


def test_catalogue_holds_no_identifiers(tmp_path, synthetic):
    workspace = Workspace.init(tmp_path / "ws")
    write_workspace(workspace, synthetic)
    text = workspace.config_path.read_text(encoding="utf-8")
    assert not HETU_LIKE.search(text)
    pop = synthetic.tables["population"]
    addresses = set(pop.column("lahiosoite").to_pylist())
    assert not any(a in text for a in addresses)
    words = set(re.findall(r"[\wÅÄÖåäö-]+", text))
    names = set(pop.column("etunimi").to_pylist()) | set(pop.column("sukunimi").to_pylist())
    assert not (names & words)
    for value in pc.unique(pop.column("henkilotunnus")).to_pylist()[:500]:
        assert value not in text


def test_rewriting_replaces_sources(tmp_path, synthetic):
    workspace = Workspace.init(tmp_path / "ws")
    write_workspace(workspace, synthetic)
    smaller = generate(persons=1_000, seed=1)
    write_workspace(workspace, smaller)
    table = pq.read_table(workspace.root / "registers/dvv/vtj_henkilot.parquet")
    assert table.num_rows == smaller.tables["population"].num_rows
    assert len(workspace.catalogue().registers) == len(REGISTER_NAMES)


def test_postgres_url_with_password_is_refused(tmp_path, synthetic):
    from safepool.errors import SafepoolError

    workspace = Workspace.init(tmp_path / "ws")
    with pytest.raises(SafepoolError):
        write_workspace(workspace, synthetic, postgres_url="postgresql://u:secret@127.0.0.1:1/db")


def test_postgres_uri_inserts_the_password():
    from safepool.synth._write import postgres_uri

    uri = postgres_uri("postgresql://steward@127.0.0.1:5432/pool", "p@ss word")
    assert uri == "postgresql://steward:p%40ss%20word@127.0.0.1:5432/pool"
    assert postgres_uri("postgresql://steward@127.0.0.1/pool", None) == "postgresql://steward@127.0.0.1/pool"


@pytest.mark.postgres
def test_write_workspace_loads_kela_and_te_into_postgresql(tmp_path, postgres_database):
    import adbc_driver_postgresql.dbapi as pg_dbapi

    small = generate(persons=1_500, seed=4)
    workspace = Workspace.init(tmp_path / "ws")
    registers = write_workspace(workspace, small, postgres_url=postgres_database.url,
                                postgres_password=postgres_database.password)
    by_name = {r.name: r for r in registers}
    for name, table in (("benefits", "kela_etuudet"), ("employment_services", "te_asiakastapahtumat")):
        source = by_name[name].source
        assert source.kind == SourceKind.postgresql
        assert source.location == postgres_database.url and source.table == table
        with pg_dbapi.connect(postgres_database.url_with_password) as conn:
            with conn.cursor() as cursor:
                cursor.execute(f"select * from {table}")
                got = cursor.fetch_arrow_table()
        expected = small.tables[name]
        assert got.column_names == expected.column_names
        for column in expected.column_names:
            assert got.column(column).to_pylist() == expected.column(column).to_pylist(), column
    assert by_name["population"].source.kind == SourceKind.parquet
    assert not (workspace.root / "registers/kela").exists()
    assert postgres_database.password not in workspace.config_path.read_text()
