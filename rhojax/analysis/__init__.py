"""The main job: every study on one model, a report that answers "where is compression safe?".

:func:`run_analysis` runs each study in its own resumable sub-folder under one budget
(:data:`BUDGETS`), then writes ``report.json`` (validated by ``report.schema.json``) and a
self-contained ``report.html``.
"""

from rhojax.analysis.budgets import BUDGETS, AnalysisSettings, budget_settings
from rhojax.analysis.job import STEPS, STUDIES, run_analysis

__all__ = ["BUDGETS", "STEPS", "STUDIES", "AnalysisSettings", "budget_settings", "run_analysis"]
