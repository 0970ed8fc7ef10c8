"""Departments (部门协同) and reassignment (改派): no schema change.

A department is an `org_unit` row of level `department` (it fits the column's 10 characters)
under a township, county or city; its staff hold `staff_role` rows with role
`department_handler` (18 of 20). A reassignment lives in the task's state (engine.assignment,
`internal_data['assignment']`) and moves the `work_item` row's user_id/unit_id/role; its history
is the `instance_event` and `case_record` of kind `reassigned`. The work calendar deployed with a
version is one more entry (`calendar.yaml`) of `process_version.files`. So this revision is a
no-op kept to hold the chain's place.

Revision ID: 0020_departments
Revises: 0019_audit_chain
"""

revision = "0020_departments"
down_revision = "0019_audit_chain"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
