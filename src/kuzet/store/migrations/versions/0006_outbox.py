"""The outbox: what integrations (MQTT, webhooks) are told, written in the same transaction as the decision, and
each destination's cursor (the last outbox id it received); the gallery's change feed (which enrolments and
watchlist entries changed, for running cameras to update their gallery without reloading it); the key of each live
run's last commit (a commit retried after its answer was lost is not stored twice).

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("analysis_runs") as batch:
        batch.add_column(sa.Column("last_commit", sa.String(32), nullable=True))
        batch.create_index("ix_analysis_runs_last_commit", ["last_commit"])
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("delivery_id", sa.String(32), nullable=False, unique=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("camera", sa.String(64), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sqlite_autoincrement=True,  # ids never reused once trimmed: cursors compare ids
    )
    op.create_table(
        "outbox_cursors",
        sa.Column("destination", sa.String(80), primary_key=True),
        sa.Column("last_id", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )

    op.create_table(
        "gallery_changes",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("subject", sa.String(40), nullable=False),
        sqlite_autoincrement=True,
    )


def downgrade() -> None:
    with op.batch_alter_table("analysis_runs") as batch:
        batch.drop_index("ix_analysis_runs_last_commit")
        batch.drop_column("last_commit")
    op.drop_table("gallery_changes")
    op.drop_table("outbox_cursors")
    op.drop_table("outbox")
