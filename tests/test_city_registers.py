"""The city's own synthetic registers (issue 13, point 1): family links, child protection and city
services, deterministic per seed, with the planted truth matching what the registers hold."""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pytest

from safepool.identity.keystore import KeyStore
from safepool.identity.pseudonym import Pseudonymiser
from safepool.pool import access
from safepool.pool.build import build_pool
from safepool.pool.scope import Scope
from safepool.synth import generate, write_workspace
from safepool.synth._city import CUSTOMER_GROUPS
from safepool.workspace import Workspace

from privacy_scan import find_identifiers

CITY = ("child_protection", "city_services")


@pytest.fixture(scope="module")
def synthetic():
    return generate(persons=6000, seed=5, clients_per_year=20)


@pytest.fixture(scope="module")
def con(synthetic):
    """The registers in DuckDB under their holders' column names (codes normalised)."""
    con = duckdb.connect()
    for name, table in synthetic.tables.items():
        con.register(name, table)
    yield con
    con.close()


def test_same_seed_same_city_registers_and_another_seed_others(synthetic):
    again = generate(persons=6000, seed=5, clients_per_year=20)
    other = generate(persons=6000, seed=6, clients_per_year=20)
    for name in CITY + ("population",):
        assert synthetic.tables[name].equals(again.tables[name]), name
        assert not synthetic.tables[name].equals(other.tables[name]), name
    assert synthetic.truth["city"] == again.truth["city"]
    assert synthetic.planted_groups.equals(again.planted_groups)


def test_parents_are_persons_of_the_population_register_and_older(con):
    rows = con.sql("""
        SELECT count(*) AS links,
               count(*) FILTER (WHERE p.syntymapaiva >= c.syntymapaiva + INTERVAL 16 YEAR) AS older,
               count(*) FILTER (WHERE p.henkilotunnus IS NULL) AS unknown
        FROM (SELECT henkilotunnus, syntymapaiva, unnest([aidin_henkilotunnus, isan_henkilotunnus]) AS parent
              FROM population) c
        LEFT JOIN population p ON p.henkilotunnus = c.parent
        WHERE c.parent IS NOT NULL""").fetchall()[0]
    links, older, unknown = rows
    assert links > 1000
    # a parent is born before the child (both ends of every link are persons in the register,
    # but for the few the register misses as a planted fault)
    assert unknown <= 0.01 * links
    assert older == 0


def test_planted_customer_groups_have_their_sizes(synthetic):
    sizes = synthetic.truth["city"]["customer_groups"]["sizes"]
    counted = pa.TableGroupBy(synthetic.planted_groups, "customer_group").aggregate([("identity_code", "count")])
    assert dict(zip(counted["customer_group"].to_pylist(), counted["identity_code_count"].to_pylist())) == sizes
    total = sum(sizes.values())
    for name, (share, *_rates) in CUSTOMER_GROUPS.items():
        assert abs(sizes[name] - share * total) <= 1


def test_child_protection_paths_differ_by_the_familys_language(synthetic):
    groups = synthetic.truth["city"]["child_protection"]["by_family_language"]
    finnish, foreign = groups["finnish"], groups["foreign"]
    assert finnish["notified"] > 100 and foreign["notified"] > 20
    # lighter services reach foreign-language families' children less; emergency placements more
    assert foreign["share_of_notified_with_open_care"] < finnish["share_of_notified_with_open_care"] - 0.08
    assert foreign["share_of_notified_with_emergency_placement"] > \
        finnish["share_of_notified_with_emergency_placement"] + 0.03
    police = {g: v["first_notifier"]["police"] / max(v["notified"], 1) for g, v in groups.items()}
    assert police["foreign"] > police["finnish"]


def test_truth_counts_are_what_the_register_holds(synthetic, con):
    truth = synthetic.truth["city"]["child_protection"]["by_family_language"]
    notified = con.sql("SELECT count(DISTINCT upper(trim(lapsen_hetu))) FROM child_protection "
                       "WHERE tapahtuma = 'notification'").fetchall()[0][0]
    planted = sum(g["notified"] for g in truth.values())
    assert planted - 0.01 * planted <= notified <= planted  # a few codes carry a planted wrong check character
    services = synthetic.truth["city"]["services"]["rows_by_service"]
    by_service = dict(con.sql("SELECT palvelu, count(*) FROM city_services GROUP BY ALL").fetchall())
    for service, rows in services.items():
        assert rows <= by_service[service] <= rows * 1.01 + 2  # planted duplicate rows on top


def test_memberships_are_spans_and_visits_are_days(con):
    visits, open_visits, spans = con.sql("""
        SELECT count(*) FILTER (WHERE palvelu IN ('school_health_care', 'library_and_culture') AND loppupaiva = alkupaiva),
               count(*) FILTER (WHERE palvelu IN ('school_health_care', 'library_and_culture') AND loppupaiva IS NULL),
               count(*) FILTER (WHERE palvelu = 'early_childhood_education' AND (loppupaiva IS NULL OR loppupaiva > alkupaiva))
        FROM city_services""").fetchall()[0]
    assert visits > 1000 and open_visits == 0 and spans > 100


def test_the_pool_holds_parents_as_pseudonyms_under_the_permits_key(tmp_path, synthetic):
    workspace = Workspace.init(tmp_path / "ws")
    write_workspace(workspace, synthetic)
    build_pool(workspace, Scope(permit="P-FAM", window={"start": "2009Q1", "end": "2024Q4"},
                                registers={"population": "*"}))
    pseudonym = Pseudonymiser(KeyStore.of(workspace).get("P-FAM")).pseudonym
    source = synthetic.tables["population"]
    codes = [c.strip().upper() for c in source["henkilotunnus"].to_pylist()]
    mothers = source["aidin_henkilotunnus"].to_pylist()
    con = access.connect(workspace.pool_dir, "P-FAM")
    try:
        pooled = dict(con.sql("SELECT pid, mother_id FROM population").fetchall())
        types = con.sql("SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = 'population' "
                        "AND column_name IN ('pid', 'mother_id', 'father_id') ORDER BY 1").fetchall()
        linked = con.sql("SELECT count(*) FROM population c JOIN population m ON m.pid = c.mother_id").fetchall()[0][0]
    finally:
        con.close()
    checked = 0
    for code, mother in zip(codes, mothers):
        if mother is not None and pseudonym(code) in pooled:
            assert pooled[pseudonym(code)] == pseudonym(mother)
            checked += 1
            if checked == 50:
                break
    assert checked == 50 and linked > 500
    assert types == [("father_id", "BIGINT"), ("mother_id", "BIGINT"), ("pid", "BIGINT")]
    pooled_dictionary = access.dictionary(workspace.pool_dir, "P-FAM")["population"]  # says what the pool holds
    assert pooled_dictionary["mother_id"].type == pooled_dictionary["father_id"].type == "integer"
    fathers = source["isan_henkilotunnus"].to_pylist()
    assert find_identifiers(workspace.root, [c for c in mothers + fathers if c]) == []
