"""Oversight against insiders: checkpoints carry their public key, enrolment under four-eyes approval with a scope and
an expiry, sign-in failure counters kept in the database.

People enrolled before this revision had no second person's approval: they become pending enrolments (their
templates are kept) and match nobody until an approver decides.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audit_checkpoints") as batch:
        batch.add_column(sa.Column("public_key", sa.String(64), nullable=False, server_default=""))
    with op.batch_alter_table("people") as batch:
        batch.add_column(sa.Column("status", sa.String(16), nullable=False, server_default="pending"))
        batch.add_column(sa.Column("scope", sa.Text(), nullable=False, server_default='["*"]'))
        batch.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("approver_id", sa.Integer(), nullable=True))
        batch.add_column(
            sa.Column(
                "decision_reason",
                sa.Text(),
                nullable=False,
                server_default="enrolled before four-eyes approval was required: awaiting approval",
            )
        )
        batch.add_column(sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("photos", sa.Text(), nullable=False, server_default="[]"))
        batch.create_index("ix_people_status", ["status"])
    op.create_table(
        "auth_throttle",
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("auth_throttle")
    with op.batch_alter_table("people") as batch:
        batch.drop_index("ix_people_status")
        for column in ("photos", "decided_at", "decision_reason", "approver_id", "expires_at", "scope", "status"):
            batch.drop_column(column)
    with op.batch_alter_table("audit_checkpoints") as batch:
        batch.drop_column("public_key")
