"""Fixtures of the case tests that run workflows on plain SpiffWorkflow."""
from __future__ import annotations

# `clock`: the settable clock SpiffWorkflow's timers read, defined with the plain-SpiffWorkflow
# helpers of test_workflow_files (which test_accountability_workflow and test_department_paths use)
from tests.cases.test_workflow_files import clock  # noqa: F401
