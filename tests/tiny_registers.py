"""A tiny hand-made set of registers with known faults, for tests that need exact counts."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import adbc_driver_sqlite.dbapi as sqlite_driver
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from safepool.registers.catalogue import Register
from safepool.workspace import Workspace

CHECK_CHARACTERS = "0123456789ABCDEFHJKLMNPRSTUVWXY"


def hetu(birth: str, sign: str, individual: int) -> str:
    """A valid identity code for DDMMYY `birth`, century `sign` and individual number."""
    return f"{birth}{sign}{individual:03d}{CHECK_CHARACTERS[int(birth + f'{individual:03d}') % 31]}"


ANNA = hetu("010185", "-", 202)
BO = hetu("150790", "Y", 311)  # 2023 century sign
CHEN = hetu("030305", "B", 422)  # 2023 century sign, born 2005
DINA = hetu("121260", "-", 533)  # only in visits: missing from population
TEMPORARY = hetu("200288", "-", 911)
WRONG_CHECK = ANNA[:-1] + ("X" if ANNA[-1] != "X" else "Y")

NAMES = ["Anna Aalto", "Bo Berg", "Chen Chang"]
ADDRESSES = ["Kivenlahdentie 1 A 3", "Tapiontori 7 B 12", "Leppavaarankatu 9 C 1"]


def population() -> pa.Table:
    return pa.table(
        {
            "henkilotunnus": [ANNA, BO, CHEN, TEMPORARY],
            "etunimi": ["Anna", "Bo", "Chen", "Temp"],
            "sukunimi": ["Aalto", "Berg", "Chang", "Person"],
            "lahiosoite": ADDRESSES + ["Nowhere 1"],
            "syntymavuosi": [1985, 1990, 2005, 1988],
            "sukupuoli": ["F", "M", "F", "M"],
        }
    )


def payments() -> pa.Table:
    return pa.table(
        {
            "hetu": [ANNA, " " + ANNA.lower() + "\t", BO, BO, WRONG_CHECK, CHEN, None],
            "maksupaiva": [dt.date(2019, 1, 5), dt.date(2019, 2, 5), dt.date(2019, 3, 5), dt.date(2019, 3, 5),
                           dt.date(2019, 4, 5), dt.date(2008, 12, 31), dt.date(2019, 5, 5)],
            "euroa": [100.0, 200.0, 300.0, 300.0, 400.0, 500.0, 600.0],
        }
    )


def visits() -> pa.Table:
    return pa.table(
        {
            "asiakas": [ANNA, BO, DINA, TEMPORARY],
            "kuukausi": [201901, 202501, 202003, 201905],
            "palvelu": ["primary_care", "mental_health", "social_work", "primary_care"],
        }
    )


def catalogue_entries() -> list[Register]:
    entries = [
        {
            "name": "population", "holder": "DVV", "description": "persons",
            "source": {"kind": "parquet", "location": "registers/dvv/population.parquet"},
            "identity_column": "henkilotunnus", "direct_identifiers": ["etunimi", "sukunimi", "lahiosoite"],
            "variables": [
                {"name": "birth_year", "column": "syntymavuosi", "type": "integer", "description": "year of birth",
                 "level": "date", "years": [1900, 2024], "date_format": "year"},
                {"name": "sex", "column": "sukupuoli", "type": "string", "description": "sex",
                 "level": "categorical", "codes": {"F": "female", "M": "male"}},
            ],
        },
        {
            "name": "payments", "holder": "Kela", "description": "benefit payments",
            "source": {"kind": "csv", "location": "registers/kela/payments.csv"},
            "identity_column": "hetu",
            "time": {"variable": "paid_on", "grain": "day", "format": "date"},
            "variables": [
                {"name": "paid_on", "column": "maksupaiva", "type": "date", "description": "payment day",
                 "level": "date", "years": [2009, 2024]},
                {"name": "amount", "column": "euroa", "type": "float", "description": "euros",
                 "sensitivity": "sensitive", "level": "numeric", "unit": "EUR", "bins": [250, 500]},
            ],
        },
        {
            "name": "visits", "holder": "City of Espoo", "description": "service visits",
            "source": {"kind": "sqlite", "location": "registers/espoo/espoo.sqlite", "table": "kaynnit"},
            "identity_column": "asiakas",
            "time": {"variable": "month", "grain": "month", "format": "yyyymm"},
            "variables": [
                {"name": "month", "column": "kuukausi", "type": "integer", "description": "month",
                 "level": "date", "years": [2009, 2025], "date_format": "yyyymm"},
                {"name": "service", "column": "palvelu", "type": "string", "description": "service",
                 "sensitivity": "special", "level": "categorical",
                 "codes": {"primary_care": "primary care", "mental_health": "mental health",
                           "social_work": "social work"}},
            ],
        },
    ]
    return [Register.model_validate(entry) for entry in entries]


def write_sqlite(path: Path, table: str, data: pa.Table) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite_driver.connect(str(path))
    cursor = con.cursor()
    cursor.adbc_ingest(table, data, mode="replace")
    con.commit()
    cursor.close()
    con.close()


def make_workspace(root: Path) -> Workspace:
    workspace = Workspace.init(root)
    (workspace.registers_dir / "dvv").mkdir()
    (workspace.registers_dir / "kela").mkdir()
    pq.write_table(population(), workspace.registers_dir / "dvv" / "population.parquet")
    pa_csv.write_csv(payments(), workspace.registers_dir / "kela" / "payments.csv")
    write_sqlite(workspace.registers_dir / "espoo" / "espoo.sqlite", "kaynnit", visits())
    workspace.save_registers(catalogue_entries())
    return workspace


def identifying_strings() -> list[str]:
    codes = [ANNA, BO, CHEN, DINA, TEMPORARY, WRONG_CHECK, ANNA.lower()]
    return codes + NAMES + ADDRESSES + ["Aalto", "Berg", "Chang"]
