"""Reports built from checked outputs only (analyst zone): the impact study's HTML and PDF report."""

from safepool.reports.source import OUTPUT_NAMES, CheckedOutput, ReportError, StudyReportSource
from safepool.reports.study_report import ReportFiles, render_study_files, render_study_report

__all__ = ["OUTPUT_NAMES", "CheckedOutput", "ReportError", "ReportFiles", "StudyReportSource", "render_study_files",
           "render_study_report"]
