"""The HTML scan report (inline SVG plots, no network) and a PNG summary.

``write_report(findings, "report.html", dataset=ds)`` is all most callers need;
the views (functions of a :class:`ReportContext`) are public so that the service's
dashboard can show the same sections.
"""

from poisonguard.report.attacks import attacks_view
from poisonguard.report.context import ReportContext, build_context, check_match
from poisonguard.report.examples import examples_view
from poisonguard.report.page import render_context, render_report, write_report
from poisonguard.report.png import write_png
from poisonguard.report.projection import Projection, project
from poisonguard.report.views import (
    classes_view,
    contributions_view,
    flagged_table_view,
    histograms_view,
    projection_view,
    summary_view,
)

__all__ = [
    "Projection",
    "ReportContext",
    "attacks_view",
    "build_context",
    "check_match",
    "classes_view",
    "contributions_view",
    "examples_view",
    "flagged_table_view",
    "histograms_view",
    "project",
    "projection_view",
    "render_context",
    "render_report",
    "summary_view",
    "write_png",
    "write_report",
]
