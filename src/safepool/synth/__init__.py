"""A deterministic synthetic Espoo: about 300,000 ever-residents 2009-2024 and their registers.

    synthetic = generate(persons=30_000, seed=1)          # in memory, numpy-vectorised
    registers = write_workspace(workspace, synthetic)     # sources + catalogue + steward truth

Registers (catalogue name: holder, source, identity column, time)

- population: DVV, registers/dvv/vtj_henkilot.parquet, henkilotunnus, person-level; names and
  street address are direct identifiers
- residence_permits: Migri, registers/migri/oleskeluluvat.csv, hetu, spans alkupaiva-loppupaiva
- employment: Statistics Finland, registers/tilastokeskus/tyossakaynti.parquet, htun, quarter
  '2019Q3' (main activity ptoim 11/12/22/24/29 and earnings), a row per person-quarter while
  living in Espoo aged 15-74
- education: Statistics Finland, registers/tilastokeskus/tutkinnot.parquet, htun, year
- income_taxes: Tax Administration, registers/vero/verotus.sqlite table verotiedot,
  verovelvollinen_hetu, year
- benefits: Kela, registers/kela/etuudet.csv (or PostgreSQL table kela_etuudet), hetu, yyyymm
- employment_services: TE services, registers/te/te_palvelut.sqlite table asiakastapahtumat (or
  PostgreSQL table te_asiakastapahtumat), asiakas_hetu, event dates
- skills_centre: Omnia, registers/omnia/osaamiskeskus.csv, opiskelija_hetu, spans
- social_health: City of Espoo, registers/espoo/espoo.sqlite table sote_kaynnit, asiakas_hetu,
  visit dates
- social_assistance: City of Espoo, same file, table toimeentulotuki, hakija_hetu, monthly
  payment dates

The planted study (all numbers in truth.json, which goes to steward/truth only)

- Entry: from 2019Q1, about `clients_per_year` immigrants a year enter the skills centre, spread
  over the quarters by season weights. Eligible in quarter q: immigrants living in Espoo at the
  end of q-1 (an employment-register row), aged 18-64 on the first day of q, not clients
  before. Entries are drawn with probability proportional to exp(score), where the score is a
  linear function of observable register background measured before q only: quarters
  unemployed in the last 8, ln(1 + earnings of the last 4 quarters / 1000), no registered
  degree of level 3+, permit grounds (family, international protection, studies, work),
  immigration within 5 years, native language group, (age - 38)^2 and sex. No latent trait
  enters, so selection is ignorable given those covariates (risk-set matching recovers the
  effect), while clients are much worse off than other immigrants, which biases the naive
  comparison downward.
- Outcomes: employment is employed when a persistent uniform draw (renewed with probability
  0.25 a quarter) falls below a probability that depends on latent ability, age, registered
  education, years in Finland, language, permit grounds, sex and children, the business cycle
  and the previous quarter's status; the non-employed become students, pensioners, others
  outside the labour force or unemployed by a second persistent draw; earnings follow a log
  wage model with a shared quarterly noise. Kela benefits, social assistance and TE events
  follow unemployment and low income; social and health visits follow age, latent well-being
  and unemployment.
- Effect: from the entry quarter on, the employment probability rises by
  0.12 * min(h / 8, 1) * multiplier (0 at entry, plateau after 8 quarters; multiplier 0.8 for
  men and 1.25 for women, times 0.6/0.85/1.0/1.2/1.4 for language levels A1..C1); log earnings
  of the employed rise by 0.05 * min(h / 8, 1). Clients' outcomes are generated with and
  without entry with common random numbers, so truth["att"] holds the exact sample ATT on
  employment (share employed) and earnings (EUR a quarter) at h = -8..12 (zero before entry),
  over clients with an employment-register row at entry + h (moved out or dead: not observed
  in either potential outcome), by sex, permit grounds and language level, with the naive
  difference against never-client immigrants for comparison.
- Identity faults (recorded code by code in `.faults`, counted in truth["faults"]): wrong check
  characters, lower case, stray whitespace, temporary codes (900-999) in Kela and TE for a share
  of recent immigrants' first year, persons missing from the population register, exact
  duplicate rows.
"""

from safepool.synth._generate import SyntheticEspoo, default_clients_per_year, generate
from safepool.synth._write import write_workspace

__all__ = ["SyntheticEspoo", "default_clients_per_year", "generate", "write_workspace"]
