"""The catalogue entries of the synthetic registers: each holder's own names, English pool names.

This is the single place where the holder column names live; the generator builds its tables
with exactly these names (tests compare them).
"""

from __future__ import annotations

from safepool.registers.catalogue import Register, Source, SourceKind, TimeSpec, Variable

V = Variable

# where each register is written inside the workspace (relative locations)
LOCATIONS: dict[str, tuple[SourceKind, str, str | None]] = {
    "population": (SourceKind.parquet, "registers/dvv/vtj_henkilot.parquet", None),
    "residence_permits": (SourceKind.csv, "registers/migri/oleskeluluvat.csv", None),
    "employment": (SourceKind.parquet, "registers/tilastokeskus/tyossakaynti.parquet", None),
    "education": (SourceKind.parquet, "registers/tilastokeskus/tutkinnot.parquet", None),
    "income_taxes": (SourceKind.sqlite, "registers/vero/verotus.sqlite", "verotiedot"),
    "benefits": (SourceKind.csv, "registers/kela/etuudet.csv", None),
    "employment_services": (SourceKind.sqlite, "registers/te/te_palvelut.sqlite", "asiakastapahtumat"),
    "skills_centre": (SourceKind.csv, "registers/omnia/osaamiskeskus.csv", None),
    "social_health": (SourceKind.sqlite, "registers/espoo/espoo.sqlite", "sote_kaynnit"),
    "social_assistance": (SourceKind.sqlite, "registers/espoo/espoo.sqlite", "toimeentulotuki"),
}
# table names when the Kela and TE registers are loaded into PostgreSQL
POSTGRES_TABLES = {"benefits": "kela_etuudet", "employment_services": "te_asiakastapahtumat"}

_MAIN_ACTIVITY = ("main activity in the quarter (Statistics Finland codes): 11 = employed, "
                  "12 = unemployed, 22 = student, 24 = pensioner, 29 = other outside the labour force "
                  "(24 and 29 are both outside the labour force)")


def _entries() -> dict[str, dict]:
    return {
        "population": dict(
            holder="Digital and Population Data Services Agency (DVV)",
            description="Population Information System extract: everybody who lived in Espoo at "
                        "some time in 2009-2024, one row per person, state at extraction",
            identity_column="henkilotunnus",
            direct_identifiers=["etunimi", "sukunimi", "lahiosoite"],
            time=None,
            variables=[
                V(name="birth_date", column="syntymapaiva", type="date", description="date of birth"),
                V(name="sex", column="sukupuoli", type="integer", description="sex: 1 = male, 2 = female"),
                V(name="native_language", column="aidinkieli", type="string",
                  description="native language: fi, sv, ru, et, ar, so, en, fa, ku, zh, other"),
                V(name="country_of_birth", column="syntymamaa", type="string",
                  description="country of birth, ISO 3166 alpha-3 code (FIN = Finland)"),
                V(name="citizenship", column="kansalaisuus", type="string",
                  description="citizenship at extraction, ISO 3166 alpha-3 code"),
                V(name="immigration_date", column="maahanmuuttopaiva", type="date",
                  description="date of (first) immigration to Finland; empty for the native-born"),
                V(name="move_in_date", column="kotikuntaan_muuttopaiva", type="date",
                  description="date of moving into Espoo (the birth date for those born in Espoo)"),
                V(name="move_out_date", column="poismuuttopaiva", type="date",
                  description="date of moving out of Espoo; empty if still living there or died there"),
                V(name="marital_status", column="siviilisaaty", type="integer",
                  description="marital status at extraction: 1 = unmarried, 2 = married or in a "
                              "registered partnership, 4 = divorced, 5 = widowed"),
                V(name="children", column="lasten_lkm", type="integer",
                  description="number of own children at extraction"),
                V(name="death_date", column="kuolinpaiva", type="date",
                  description="date of death; empty if alive at the end of 2024"),
            ]),
        "residence_permits": dict(
            holder="Finnish Immigration Service (Migri)",
            description="residence permits and registrations of an EU citizen's right of residence, "
                        "one row per permit",
            identity_column="hetu",
            direct_identifiers=[],
            time=TimeSpec(variable="start_date", end_variable="end_date", grain="day", format="date"),
            variables=[
                V(name="grounds", column="luvan_peruste", type="string", sensitivity="sensitive",
                  description="grounds of the permit: work, studies, family, "
                              "international_protection, other"),
                V(name="permit_type", column="luvan_tyyppi", type="string", sensitivity="sensitive",
                  description="A = continuous temporary, B = temporary, P = permanent, "
                              "EU = registration of an EU citizen's right of residence"),
                V(name="start_date", column="alkupaiva", type="date", sensitivity="sensitive",
                  description="first day the permit is valid"),
                V(name="end_date", column="loppupaiva", type="date", sensitivity="sensitive",
                  description="last day the permit is valid; empty = permanent or open-ended"),
            ]),
        "employment": dict(
            holder="Statistics Finland",
            description="employment statistics: main activity and earnings per quarter, one row per "
                        "person and quarter while living in Espoo aged 15-74",
            identity_column="htun",
            direct_identifiers=[],
            time=TimeSpec(variable="quarter", grain="quarter", format="yyyyq"),
            variables=[
                V(name="quarter", column="vuosineljannes", type="string",
                  description="statistical quarter, e.g. 2019Q3"),
                V(name="main_activity", column="ptoim", type="string", description=_MAIN_ACTIVITY),
                V(name="earnings", column="ansiotulot", type="float", sensitivity="sensitive",
                  description="wage and salary earnings in the quarter, EUR"),
            ]),
        "education": dict(
            holder="Statistics Finland",
            description="register of completed education and degrees (degrees completed in "
                        "Finland), one row per degree",
            identity_column="htun",
            direct_identifiers=[],
            time=TimeSpec(variable="year", grain="year", format="year"),
            variables=[
                V(name="year", column="suoritusvuosi", type="integer",
                  description="year the degree was completed"),
                V(name="level", column="koulutusaste", type="string",
                  description="level of the degree: 3 = upper secondary, 5 = short-cycle tertiary, "
                              "6 = bachelor or equivalent, 7 = master or equivalent, 8 = doctoral"),
                V(name="field", column="koulutusala", type="string",
                  description="field of education (ISCED-F 2013 broad field): 00 generic "
                              "programmes, 01 education, 02 arts and humanities, 03 social sciences, "
                              "04 business, administration and law, 05 natural sciences, 06 ICT, "
                              "07 engineering, 08 agriculture, 09 health and welfare, 10 services"),
            ]),
        "income_taxes": dict(
            holder="Finnish Tax Administration",
            description="final taxation per tax year, one row per taxpayer and year with income",
            identity_column="verovelvollinen_hetu",
            direct_identifiers=[],
            time=TimeSpec(variable="tax_year", grain="year", format="year"),
            variables=[
                V(name="tax_year", column="verovuosi", type="integer", description="tax year"),
                V(name="earned_income", column="ansiotulo", type="float", sensitivity="sensitive",
                  description="earned income (wages, pensions, taxable benefits), EUR"),
                V(name="capital_income", column="paaomatulo", type="float", sensitivity="sensitive",
                  description="capital income, EUR"),
                V(name="taxes_paid", column="maksetut_verot", type="float", sensitivity="sensitive",
                  description="taxes paid on the year's income, EUR"),
            ]),
        "benefits": dict(
            holder="Social Insurance Institution of Finland (Kela)",
            description="benefits paid, one row per person, month and benefit",
            identity_column="hetu",
            direct_identifiers=[],
            time=TimeSpec(variable="month", grain="month", format="yyyymm"),
            variables=[
                V(name="month", column="maksukuukausi", type="integer",
                  description="month the benefit is paid for, yyyymm"),
                V(name="benefit_type", column="etuus", type="string", sensitivity="sensitive",
                  description="benefit: labour_market_subsidy, basic_unemployment_allowance, "
                              "integration_assistance, housing_allowance, basic_social_assistance "
                              "(paid by Kela from 2017; earlier by the municipality)"),
                V(name="amount", column="maara_eur", type="float", sensitivity="sensitive",
                  description="amount paid, EUR"),
            ]),
        "employment_services": dict(
            holder="TE Services (Uusimaa Employment and Economic Development Office)",
            description="events of the employment services customer register, one row per event",
            identity_column="asiakas_hetu",
            direct_identifiers=[],
            time=TimeSpec(variable="event_date", grain="day", format="date"),
            variables=[
                V(name="event_date", column="tapahtumapaiva", type="date", description="date of the event"),
                V(name="event_type", column="tapahtuma", type="string",
                  description="event: clientship_start, job_seeking, integration_training, "
                              "labour_market_training, work_tryout, internship, employment, "
                              "clientship_end"),
            ]),
        "skills_centre": dict(
            holder="Omnia (Espoo Skills Centre for Immigrants)",
            description="student register of the skills centre, one row per client",
            identity_column="opiskelija_hetu",
            direct_identifiers=[],
            time=TimeSpec(variable="entry_date", end_variable="exit_date", grain="day", format="date"),
            variables=[
                V(name="entry_date", column="aloituspaiva", type="date", description="date of entry"),
                V(name="exit_date", column="lopetuspaiva", type="date",
                  description="date of exit; empty if still a client"),
                V(name="programme", column="koulutusohjelma", type="string",
                  description="programme: language_training, vocational_training, employment_path, "
                              "entrepreneurship"),
                V(name="language_level", column="kielitaso", type="string",
                  description="Finnish language level at entry (CEFR): A1, A2, B1, B2, C1"),
                V(name="motivation", column="motivaatio", type="integer",
                  description="motivation to study and find work at entry, 1 (low) to 5 (high)"),
                V(name="family_relations", column="perhesuhteet", type="string",
                  description="family situation at entry: lives_alone, partner, partner_children, "
                              "single_parent, other"),
                V(name="social_network", column="sosiaalinen_verkosto", type="integer",
                  description="social network at entry, 1 (none) to 5 (strong)"),
            ]),
        "social_health": dict(
            holder="City of Espoo",
            description="visits to the city's social and health services, one row per visit "
                        "(number of visits and diagnosis chapters, no reasons)",
            identity_column="asiakas_hetu",
            direct_identifiers=[],
            time=TimeSpec(variable="visit_date", grain="day", format="date"),
            variables=[
                V(name="visit_date", column="kayntipaiva", type="date", sensitivity="special",
                  description="date of the visit"),
                V(name="service", column="palvelu", type="string", sensitivity="special",
                  description="service: primary_care, mental_health, substance_abuse, social_work, "
                              "child_protection, rehabilitation"),
                V(name="icd10_chapter", column="icd10_luku", type="string", sensitivity="special",
                  description="ICD-10 chapter of the main diagnosis as a Roman numeral (I-XXII); "
                              "empty for social services"),
            ]),
        "social_assistance": dict(
            holder="City of Espoo",
            description="social assistance decisions paid by the city, one row per month and type",
            identity_column="hakija_hetu",
            direct_identifiers=[],
            time=TimeSpec(variable="payment_date", grain="month", format="date"),
            variables=[
                V(name="payment_date", column="maksupaiva", type="date", sensitivity="sensitive",
                  description="payment date; one payment per month and type"),
                V(name="assistance_type", column="tuen_laji", type="string", sensitivity="sensitive",
                  description="basic (paid by the city until 2016, by Kela from 2017), "
                              "supplementary, preventive"),
                V(name="amount", column="maara_eur", type="float", sensitivity="sensitive",
                  description="amount paid, EUR"),
            ]),
    }


REGISTER_NAMES = list(LOCATIONS)


def holder_columns(name: str) -> list[str]:
    """The holder's columns in table order: identity, direct identifiers, variables."""
    entry = _entries()[name]
    return ([entry["identity_column"], *entry["direct_identifiers"]]
            + [v.column for v in entry["variables"]])


def identity_column(name: str) -> str:
    return _entries()[name]["identity_column"]


def register_entries(postgres_url: str | None = None) -> list[Register]:
    """Catalogue entries; with `postgres_url` Kela and TE point at PostgreSQL tables."""
    out = []
    for name, entry in _entries().items():
        kind, location, table = LOCATIONS[name]
        if postgres_url is not None and name in POSTGRES_TABLES:
            kind, location, table = SourceKind.postgresql, postgres_url, POSTGRES_TABLES[name]
        out.append(Register(name=name, source=Source(kind=kind, location=location, table=table), **entry))
    return out
