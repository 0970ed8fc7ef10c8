"""Dispute cases (矛盾件): the case service (report, act, inbox, archive, urge), the step listener
and assignment, attachments, page data for the staff UI, the scenario runner, the DMN coverage check.

May import `engine` and `grid.org`. Must not import `grid.registry`.
"""
