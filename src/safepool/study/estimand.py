"""What the estimate is an effect on: every client (the ATT), or only the clients who were matched.

Matching drops a client for whom no acceptable control exists (none in the risk set, none in
the exact cell, none within the caliper, or, without replacement, every acceptable control
already taken). The estimate is then the effect on the clients who stayed. When they are
nearly all (at least the study's `matching.min_share_matched`, default 90%), it is read as the
ATT; below that it is not: the clients who were dropped are those hardest to match, and their
effect may well differ. The run then warns, and every table and the report name the estimand
"effect on the matched clients". Matching with replacement or full matching (matching.replace,
matching.method: full) keeps every client that has any acceptable control.

The wording is here so that the console, the tables and the report say the same thing; the
report builds it from the checked cohort flow's counts, never from raw ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

ATT = "ATT"
MATCHED_ONLY = "effect on the matched clients"
NOT_MATCHED = "clients not matched: "  # cohort flow steps, one per reason
MATCHED_STEP = "clients matched"
TREATED_STEP = "entrants eligible at their entry quarter (treated units)"


def estimand_of(share_matched: float, min_share: float) -> str:
    """The estimand's name for a run that matched this share of its clients."""
    return ATT if share_matched >= min_share else MATCHED_ONLY


@dataclass(frozen=True)
class MatchingSummary:
    """How many clients the estimate rests on, why the others left, and what it estimates."""

    n_treated: float
    n_matched: float
    min_share: float
    reasons: Mapping[str, float] = field(default_factory=dict)  # reason -> clients not matched
    named: str | None = None  # the run's estimand, when the counts are published (rounded) ones
    rounded_to: int | None = None  # the base the published counts were rounded to, if they were

    @property
    def share(self) -> float:
        return self.n_matched / self.n_treated if self.n_treated > 0 else 0.0

    @property
    def estimand(self) -> str:
        return self.named or estimand_of(self.share, self.min_share)

    @property
    def warning(self) -> str | None:
        """The warning a run below the threshold gives, or None."""
        if self.estimand == ATT:
            return None
        return (f"Only {self.share:.0%} of the clients were matched (the study asks for at least "
                f"{self.min_share:.0%}): the estimates are the effect on the matched clients, not the effect on "
                "all clients (ATT). The clients left out are those hardest to match, and their effect may differ. "
                "Matching with replacement (matching.replace: true) or full matching (matching.method: full) "
                "keeps every client that has an acceptable control.")

    def sentence(self) -> str:
        """One sentence for people: the share matched, with the reasons for the others."""
        rounded = f"; counts rounded to multiples of {self.rounded_to}" if self.rounded_to else ""
        text = (f"{self.share:.0%} of the clients were matched ({self.n_matched:,.0f} of {self.n_treated:,.0f}"
                f"{rounded})")
        left = [f"{reason} {count:,.0f}" for reason, count in self.reasons.items() if count]
        if left:
            text += "; not matched: " + ", ".join(left)
        return text + f". Estimand: {self.estimand}."
