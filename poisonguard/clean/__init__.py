"""Apply findings to data: drop, relabel or quarantine flagged rows."""

from poisonguard.clean.apply import (
    ACTIONS,
    CONFIDENT_SCORE,
    CleanPlan,
    CleanResult,
    apply_findings,
    plan_cleaning,
)

__all__ = [
    "ACTIONS", "CONFIDENT_SCORE", "CleanPlan", "CleanResult", "apply_findings", "plan_cleaning",
]
