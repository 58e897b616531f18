"""Budgeted compression plans: costs, candidate actions, the cost model, the optimizer and the study."""
