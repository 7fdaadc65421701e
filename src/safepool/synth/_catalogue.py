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
    "child_protection": (SourceKind.sqlite, "registers/espoo/espoo.sqlite", "lastensuojelu"),
    "city_services": (SourceKind.parquet, "registers/espoo/palvelukaytto.parquet", None),
}
# table names when the Kela and TE registers are loaded into PostgreSQL
POSTGRES_TABLES = {"benefits": "kela_etuudet", "employment_services": "te_asiakastapahtumat"}

_MAIN_ACTIVITY = ("main activity in the quarter (Statistics Finland codes): 11 = employed, "
                  "12 = unemployed, 22 = student, 24 = pensioner, 29 = other outside the labour force "
                  "(24 and 29 are both outside the labour force)")

# ---------------------------------------------------------------------------------------------
# the data dictionary's measurement levels: code lists (every code the generator writes, as
# text), units and the bins a statistics office would publish, and the years dates cover

LAST_YEAR = 2024
WINDOW_YEARS = (2009, LAST_YEAR)  # the registers' window
BIRTH_YEARS = (1910, LAST_YEAR)  # the oldest residents of 2009 were born in 1910
IMMIGRATION_YEARS = (1990, LAST_YEAR)
PERMIT_END_LAST_YEAR = 2028  # a temporary permit runs at most four years past the extraction
DEGREE_YEARS = (1929, LAST_YEAR)  # upper secondary degrees of the oldest residents (at 19)
PROGRAMME_YEARS = (2019, LAST_YEAR)  # the skills centre opened in 2019

COUNTRY_CODES = {
    "FIN": "Finland", "EST": "Estonia", "RUS": "Russia", "IRQ": "Iraq", "SOM": "Somalia",
    "CHN": "China", "IND": "India", "AFG": "Afghanistan", "SYR": "Syria", "IRN": "Iran",
    "UKR": "Ukraine", "VNM": "Vietnam", "PHL": "Philippines", "TUR": "Turkey",
    "GBR": "United Kingdom", "USA": "United States", "SWE": "Sweden", "THA": "Thailand",
    "NPL": "Nepal",
}
LANGUAGE_CODES = {
    "fi": "Finnish", "sv": "Swedish", "ru": "Russian", "et": "Estonian", "ar": "Arabic",
    "so": "Somali", "en": "English", "fa": "Persian", "ku": "Kurdish", "zh": "Chinese",
    "other": "other",
}
GROUNDS_CODES = {"work": "work", "studies": "studies", "family": "family",
                 "international_protection": "international protection", "other": "other"}
MAIN_ACTIVITY_CODES = {"11": "employed", "12": "unemployed", "22": "student", "24": "pensioner",
                       "29": "other outside the labour force"}
DEGREE_LEVEL_CODES = {"3": "upper secondary", "5": "short-cycle tertiary", "6": "bachelor",
                      "7": "master", "8": "doctoral"}
FIELD_CODES = {
    "00": "generic programmes", "01": "education", "02": "arts and humanities",
    "03": "social sciences", "04": "business, administration and law", "05": "natural sciences",
    "06": "ICT", "07": "engineering", "08": "agriculture", "09": "health and welfare",
    "10": "services",
}
BENEFIT_CODES = {
    "labour_market_subsidy": "labour market subsidy",
    "basic_unemployment_allowance": "basic unemployment allowance",
    "integration_assistance": "integration assistance", "housing_allowance": "housing allowance",
    "basic_social_assistance": "basic social assistance",
}
TE_EVENT_CODES = {
    "clientship_start": "clientship start", "job_seeking": "job seeking",
    "integration_training": "integration training",
    "labour_market_training": "labour market training", "work_tryout": "work try-out",
    "internship": "internship", "employment": "employment", "clientship_end": "clientship end",
}
PROGRAMME_CODES = {"language_training": "language training", "vocational_training": "vocational training",
                   "employment_path": "employment path", "entrepreneurship": "entrepreneurship"}
LANGUAGE_LEVEL_CODES = {"A1": "A1 beginner", "A2": "A2 elementary", "B1": "B1 intermediate",
                        "B2": "B2 upper intermediate", "C1": "C1 advanced"}
MOTIVATION_CODES = {"1": "very low", "2": "low", "3": "moderate", "4": "high", "5": "very high"}
NETWORK_CODES = {"1": "none", "2": "weak", "3": "moderate", "4": "good", "5": "strong"}
FAMILY_CODES = {"lives_alone": "lives alone", "partner": "partner", "partner_children": "partner and children",
                "single_parent": "single parent", "other": "other"}
SERVICE_CODES = {"primary_care": "primary care", "mental_health": "mental health",
                 "substance_abuse": "substance abuse", "social_work": "social work",
                 "child_protection": "child protection", "rehabilitation": "rehabilitation"}
# the whole ICD-10 chapter list (the generator writes fourteen of them)
ICD10_CHAPTER_CODES = {
    "I": "infectious diseases", "II": "neoplasms", "III": "blood and immune disorders",
    "IV": "endocrine and metabolic", "V": "mental and behavioural", "VI": "nervous system",
    "VII": "eye", "VIII": "ear", "IX": "circulatory system", "X": "respiratory system",
    "XI": "digestive system", "XII": "skin", "XIII": "musculoskeletal system",
    "XIV": "genitourinary system", "XV": "pregnancy and childbirth", "XVI": "perinatal conditions",
    "XVII": "congenital anomalies", "XVIII": "symptoms and abnormal findings",
    "XIX": "injury and poisoning", "XX": "external causes", "XXI": "contact with health services",
    "XXII": "special purposes",
}
DISTRICT_CODES = {"1": "Suur-Leppavaara", "2": "Suur-Tapiola", "3": "Suur-Matinkyla", "4": "Suur-Espoonlahti",
                  "5": "Suur-Kauklahti", "6": "Vanha-Espoo", "7": "Pohjois-Espoo"}
CHILD_PROTECTION_EVENT_CODES = {
    "notification": "child protection notification", "assessment": "service need assessment",
    "family_work": "open care: family work", "support_person": "open care: support person or family",
    "financial_support": "open care: financial support", "peer_group": "open care: peer group activity",
    "emergency_placement": "emergency placement", "placement_outside_home": "placement outside the home "
                                                                            "(taken into care)",
    "aftercare": "aftercare",
}
NOTIFIER_CODES = {"school": "school", "health_care": "health care",
                  "early_childhood_education": "early childhood education", "police": "police",
                  "social_services": "social services (incl. emergency)", "parent": "parent or the child",
                  "other": "other"}
CITY_SERVICE_CODES = {
    "early_childhood_education": "early childhood education (membership)",
    "school_health_care": "school health care (visit)", "family_counselling": "family counselling (visit)",
    "youth_services": "youth services (visit)", "library_and_culture": "library and culture (visit)",
    "sports": "sports (yearly membership)", "adult_social_work": "adult social work (visit)",
    "elderly_services": "elderly services: home care (membership)",
}
# EUR; the first edge 0.01 keeps zero (no earnings, no income) a group of its own
QUARTERLY_EARNINGS_BINS = [0.01, 1000, 2500, 5000, 7500, 10000, 15000]
YEARLY_INCOME_BINS = [0.01, 5000, 10000, 20000, 30000, 40000, 50000, 70000, 100000]
CAPITAL_INCOME_BINS = [0.01, 100, 500, 1000, 5000, 10000, 50000]
TAXES_BINS = [0.01, 1000, 2500, 5000, 10000, 20000, 40000]
# a payment for one month (never zero)
MONTHLY_BENEFIT_BINS = [100, 200, 300, 400, 500, 600, 800, 1000]


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
                V(name="birth_date", column="syntymapaiva", type="date", description="date of birth",
                  level="date", years=(BIRTH_YEARS[0], LAST_YEAR)),
                V(name="sex", column="sukupuoli", type="integer", description="sex: 1 = male, 2 = female",
                  level="categorical", codes={"1": "male", "2": "female"}),
                V(name="native_language", column="aidinkieli", type="string",
                  description="native language: fi, sv, ru, et, ar, so, en, fa, ku, zh, other",
                  level="categorical", codes=LANGUAGE_CODES),
                V(name="country_of_birth", column="syntymamaa", type="string",
                  description="country of birth, ISO 3166 alpha-3 code (FIN = Finland)",
                  level="categorical", codes=COUNTRY_CODES),
                V(name="citizenship", column="kansalaisuus", type="string",
                  description="citizenship at extraction, ISO 3166 alpha-3 code",
                  level="categorical", codes=COUNTRY_CODES),
                V(name="immigration_date", column="maahanmuuttopaiva", type="date",
                  description="date of (first) immigration to Finland; empty for the native-born",
                  level="date", years=(IMMIGRATION_YEARS[0], LAST_YEAR)),
                V(name="move_in_date", column="kotikuntaan_muuttopaiva", type="date",
                  description="date of moving into Espoo (the birth date for those born in Espoo)",
                  level="date", years=(BIRTH_YEARS[0], LAST_YEAR)),
                V(name="move_out_date", column="poismuuttopaiva", type="date",
                  description="date of moving out of Espoo; empty if still living there or died there",
                  level="date", years=WINDOW_YEARS),
                V(name="marital_status", column="siviilisaaty", type="integer",
                  description="marital status at extraction: 1 = unmarried, 2 = married or in a "
                              "registered partnership, 4 = divorced, 5 = widowed",
                  level="categorical", codes={"1": "unmarried", "2": "married", "4": "divorced", "5": "widowed"}),
                V(name="children", column="lasten_lkm", type="integer",
                  description="number of own children at extraction",
                  level="numeric", unit="children", bins=[1, 2, 3, 4]),
                V(name="death_date", column="kuolinpaiva", type="date",
                  description="date of death; empty if alive at the end of 2024",
                  level="date", years=WINDOW_YEARS),
                V(name="district", column="suuralue", type="string",
                  description="major district of Espoo of the home address at extraction (or when moving "
                              "out): 1 Suur-Leppavaara, 2 Suur-Tapiola, 3 Suur-Matinkyla, 4 Suur-Espoonlahti, "
                              "5 Suur-Kauklahti, 6 Vanha-Espoo, 7 Pohjois-Espoo",
                  level="categorical", codes=DISTRICT_CODES),
                V(name="mother_id", column="aidin_henkilotunnus", type="string",
                  description="the mother's identity: in the pool her pseudonym under the permit's key (the pid "
                              "of her population row); empty if not known to the register (recorded for persons "
                              "born 1991 or later)",
                  level="text"),
                V(name="father_id", column="isan_henkilotunnus", type="string",
                  description="the father's identity: in the pool his pseudonym under the permit's key; empty if "
                              "not known to the register",
                  level="text"),
            ],
            related_identities=["mother_id", "father_id"]),
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
                              "international_protection, other",
                  level="categorical", codes=GROUNDS_CODES),
                V(name="permit_type", column="luvan_tyyppi", type="string", sensitivity="sensitive",
                  description="A = continuous temporary, B = temporary, P = permanent, "
                              "EU = registration of an EU citizen's right of residence",
                  level="categorical", codes={"A": "continuous temporary", "B": "temporary", "P": "permanent",
                                              "EU": "EU registration"}),
                V(name="start_date", column="alkupaiva", type="date", sensitivity="sensitive",
                  description="first day the permit is valid",
                  level="date", years=(IMMIGRATION_YEARS[0], LAST_YEAR)),
                V(name="end_date", column="loppupaiva", type="date", sensitivity="sensitive",
                  description="last day the permit is valid; empty = permanent or open-ended",
                  level="date", years=(IMMIGRATION_YEARS[0], PERMIT_END_LAST_YEAR)),
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
                  description="statistical quarter, e.g. 2019Q3",
                  level="date", years=WINDOW_YEARS, date_format="yyyyq"),
                V(name="main_activity", column="ptoim", type="string", description=_MAIN_ACTIVITY,
                  level="categorical", codes=MAIN_ACTIVITY_CODES),
                V(name="earnings", column="ansiotulot", type="float", sensitivity="sensitive",
                  description="wage and salary earnings in the quarter, EUR",
                  level="numeric", unit="EUR", bins=QUARTERLY_EARNINGS_BINS),
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
                  description="year the degree was completed",
                  level="date", years=(DEGREE_YEARS[0], LAST_YEAR), date_format="year"),
                V(name="level", column="koulutusaste", type="string",
                  description="level of the degree: 3 = upper secondary, 5 = short-cycle tertiary, "
                              "6 = bachelor or equivalent, 7 = master or equivalent, 8 = doctoral",
                  level="categorical", codes=DEGREE_LEVEL_CODES),
                V(name="field", column="koulutusala", type="string",
                  description="field of education (ISCED-F 2013 broad field): 00 generic "
                              "programmes, 01 education, 02 arts and humanities, 03 social sciences, "
                              "04 business, administration and law, 05 natural sciences, 06 ICT, "
                              "07 engineering, 08 agriculture, 09 health and welfare, 10 services",
                  level="categorical", codes=FIELD_CODES),
            ]),
        "income_taxes": dict(
            holder="Finnish Tax Administration",
            description="final taxation per tax year, one row per taxpayer and year with income",
            identity_column="verovelvollinen_hetu",
            direct_identifiers=[],
            time=TimeSpec(variable="tax_year", grain="year", format="year"),
            variables=[
                V(name="tax_year", column="verovuosi", type="integer", description="tax year",
                  level="date", years=WINDOW_YEARS, date_format="year"),
                V(name="earned_income", column="ansiotulo", type="float", sensitivity="sensitive",
                  description="earned income (wages, pensions, taxable benefits), EUR",
                  level="numeric", unit="EUR", bins=YEARLY_INCOME_BINS),
                V(name="capital_income", column="paaomatulo", type="float", sensitivity="sensitive",
                  description="capital income, EUR",
                  level="numeric", unit="EUR", bins=CAPITAL_INCOME_BINS),
                V(name="taxes_paid", column="maksetut_verot", type="float", sensitivity="sensitive",
                  description="taxes paid on the year's income, EUR",
                  level="numeric", unit="EUR", bins=TAXES_BINS),
            ]),
        "benefits": dict(
            holder="Social Insurance Institution of Finland (Kela)",
            description="benefits paid, one row per person, month and benefit",
            identity_column="hetu",
            direct_identifiers=[],
            time=TimeSpec(variable="month", grain="month", format="yyyymm"),
            variables=[
                V(name="month", column="maksukuukausi", type="integer",
                  description="month the benefit is paid for, yyyymm",
                  level="date", years=WINDOW_YEARS, date_format="yyyymm"),
                V(name="benefit_type", column="etuus", type="string", sensitivity="sensitive",
                  description="benefit: labour_market_subsidy, basic_unemployment_allowance, "
                              "integration_assistance, housing_allowance, basic_social_assistance "
                              "(paid by Kela from 2017; earlier by the municipality)",
                  level="categorical", codes=BENEFIT_CODES),
                V(name="amount", column="maara_eur", type="float", sensitivity="sensitive",
                  description="amount paid for the month, EUR",
                  level="numeric", unit="EUR", bins=MONTHLY_BENEFIT_BINS),
            ]),
        "employment_services": dict(
            holder="TE Services (Uusimaa Employment and Economic Development Office)",
            description="events of the employment services customer register, one row per event",
            identity_column="asiakas_hetu",
            direct_identifiers=[],
            time=TimeSpec(variable="event_date", grain="day", format="date"),
            variables=[
                V(name="event_date", column="tapahtumapaiva", type="date", description="date of the event",
                  level="date", years=WINDOW_YEARS),
                V(name="event_type", column="tapahtuma", type="string",
                  description="event: clientship_start, job_seeking, integration_training, "
                              "labour_market_training, work_tryout, internship, employment, "
                              "clientship_end",
                  level="categorical", codes=TE_EVENT_CODES),
            ]),
        "skills_centre": dict(
            holder="Omnia (Espoo Skills Centre for Immigrants)",
            description="student register of the skills centre, one row per client",
            identity_column="opiskelija_hetu",
            direct_identifiers=[],
            time=TimeSpec(variable="entry_date", end_variable="exit_date", grain="day", format="date"),
            variables=[
                V(name="entry_date", column="aloituspaiva", type="date", description="date of entry",
                  level="date", years=PROGRAMME_YEARS),
                V(name="exit_date", column="lopetuspaiva", type="date",
                  description="date of exit; empty if still a client",
                  level="date", years=PROGRAMME_YEARS),
                V(name="programme", column="koulutusohjelma", type="string",
                  description="programme: language_training, vocational_training, employment_path, "
                              "entrepreneurship",
                  level="categorical", codes=PROGRAMME_CODES),
                V(name="language_level", column="kielitaso", type="string",
                  description="Finnish language level at entry (CEFR): A1, A2, B1, B2, C1",
                  level="categorical", codes=LANGUAGE_LEVEL_CODES),
                V(name="motivation", column="motivaatio", type="integer",
                  description="motivation to study and find work at entry, 1 (low) to 5 (high)",
                  level="categorical", codes=MOTIVATION_CODES),
                V(name="family_relations", column="perhesuhteet", type="string",
                  description="family situation at entry: lives_alone, partner, partner_children, "
                              "single_parent, other",
                  level="categorical", codes=FAMILY_CODES),
                V(name="social_network", column="sosiaalinen_verkosto", type="integer",
                  description="social network at entry, 1 (none) to 5 (strong)",
                  level="categorical", codes=NETWORK_CODES),
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
                  description="date of the visit", level="date", years=WINDOW_YEARS),
                V(name="service", column="palvelu", type="string", sensitivity="special",
                  description="service: primary_care, mental_health, substance_abuse, social_work, "
                              "child_protection, rehabilitation",
                  level="categorical", codes=SERVICE_CODES),
                V(name="icd10_chapter", column="icd10_luku", type="string", sensitivity="special",
                  description="ICD-10 chapter of the main diagnosis as a Roman numeral (I-XXII); "
                              "empty for social services",
                  level="categorical", codes=ICD10_CHAPTER_CODES),
            ]),
        "social_assistance": dict(
            holder="City of Espoo",
            description="social assistance decisions paid by the city, one row per month and type",
            identity_column="hakija_hetu",
            direct_identifiers=[],
            time=TimeSpec(variable="payment_date", grain="month", format="date"),
            variables=[
                V(name="payment_date", column="maksupaiva", type="date", sensitivity="sensitive",
                  description="payment date; one payment per month and type",
                  level="date", years=WINDOW_YEARS),
                V(name="assistance_type", column="tuen_laji", type="string", sensitivity="sensitive",
                  description="basic (paid by the city until 2016, by Kela from 2017), "
                              "supplementary, preventive",
                  level="categorical", codes={"basic": "basic", "supplementary": "supplementary",
                                              "preventive": "preventive"}),
                V(name="amount", column="maara_eur", type="float", sensitivity="sensitive",
                  description="amount paid, EUR", level="numeric", unit="EUR", bins=MONTHLY_BENEFIT_BINS),
            ]),
        "child_protection": dict(
            holder="City of Espoo",
            description="child protection client register (social services): one row per event of a child's "
                        "child protection: notifications, service need assessments, open-care support measures, "
                        "emergency placements, placements outside the home and aftercare",
            identity_column="lapsen_hetu",
            direct_identifiers=[],
            time=TimeSpec(variable="event_date", grain="day", format="date"),
            variables=[
                V(name="event_date", column="tapahtumapaiva", type="date", sensitivity="special",
                  description="date of the event (a support measure or placement: its start)",
                  level="date", years=WINDOW_YEARS),
                V(name="event_type", column="tapahtuma", type="string", sensitivity="special",
                  description="event: notification, assessment, family_work, support_person, financial_support, "
                              "peer_group (the four open-care support measures), emergency_placement, "
                              "placement_outside_home, aftercare",
                  level="categorical", codes=CHILD_PROTECTION_EVENT_CODES),
                V(name="notifier", column="ilmoittaja", type="string", sensitivity="special",
                  description="who made a notification: school, health_care, early_childhood_education, police, "
                              "social_services, parent, other; empty for other events",
                  level="categorical", codes=NOTIFIER_CODES),
            ]),
        "city_services": dict(
            holder="City of Espoo",
            description="use of the city's services across a life, from the services' customer systems: one row "
                        "per visit (start and end the same day) or membership (a span; no end while it lasts)",
            identity_column="asiakas_hetu",
            direct_identifiers=[],
            time=TimeSpec(variable="start_date", end_variable="end_date", grain="day", format="date"),
            variables=[
                V(name="service", column="palvelu", type="string", sensitivity="sensitive",
                  description="service: early_childhood_education, sports and elderly_services are memberships; "
                              "school_health_care, family_counselling, youth_services, library_and_culture and "
                              "adult_social_work are visits",
                  level="categorical", codes=CITY_SERVICE_CODES),
                V(name="start_date", column="alkupaiva", type="date", sensitivity="sensitive",
                  description="day of the visit, or first day of the membership (a membership open in the "
                              "window may have started long before it)",
                  level="date", years=(BIRTH_YEARS[0], LAST_YEAR)),
                V(name="end_date", column="loppupaiva", type="date", sensitivity="sensitive",
                  description="day of the visit, or last day of the membership; empty while it lasts",
                  level="date", years=WINDOW_YEARS),
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
        out.append(Register(name=name, source=Source(kind=kind, location=location, table=table), synthetic=True,
                            **entry))
    return out
