"""A wrong-match mark needs a second person: who approved it and when (a mark suppresses hits only once approved;
a refused mark's appearance is destroyed). Marks made before this revision wait for their second reviewer too.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("alert_appearances") as batch:
        batch.add_column(sa.Column("mark_reason", sa.Text(), nullable=False, server_default=""))
        batch.add_column(sa.Column("mark_approved_by_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("mark_approved_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_foreign_key("fk_alert_appearances_mark_approved_by", "users", ["mark_approved_by_id"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("alert_appearances") as batch:
        batch.drop_constraint("fk_alert_appearances_mark_approved_by", type_="foreignkey")
        batch.drop_column("mark_approved_at")
        batch.drop_column("mark_approved_by_id")
        batch.drop_column("mark_reason")
