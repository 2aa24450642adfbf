"""The face descriptors of an alert's track (encrypted): kept while the alert waits for review and, when a reviewer
marks the match wrong, until the watchlist entry ends, so that the same appearance is not alerted again for it.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alert_appearances",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("alert_id", sa.Integer(), nullable=False, unique=True),
        sa.Column("entry_id", sa.Integer(), sa.ForeignKey("watchlist_entries.id", ondelete="CASCADE"), nullable=False),
        sa.Column("model", sa.String(64), nullable=False),
        sa.Column("dim", sa.Integer(), nullable=False),
        sa.Column("vectors", sa.LargeBinary(), nullable=False),
        sa.Column("wrong_match", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("marked_by_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=True),
        sa.Column("marked_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_alert_appearances_entry_id", "alert_appearances", ["entry_id"])
    op.create_index("ix_alert_appearances_wrong_match", "alert_appearances", ["wrong_match"])


def downgrade() -> None:
    op.drop_index("ix_alert_appearances_wrong_match", "alert_appearances")
    op.drop_index("ix_alert_appearances_entry_id", "alert_appearances")
    op.drop_table("alert_appearances")
