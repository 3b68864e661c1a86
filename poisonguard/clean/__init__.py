"""Apply findings to data: drop, relabel or quarantine flagged rows."""

from poisonguard.clean.apply import CleanPlan, CleanResult, apply_findings, plan_cleaning

__all__ = ["CleanPlan", "CleanResult", "apply_findings", "plan_cleaning"]
