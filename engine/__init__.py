"""Gridflow's generic BPMN runtime over SpiffWorkflow and SQLAlchemy.

Nothing in this package knows about grids, levels or cases: it deploys process
versions, runs instances one transaction per step, projects user tasks into
work items, fires timers and keeps an audit trail.
"""
