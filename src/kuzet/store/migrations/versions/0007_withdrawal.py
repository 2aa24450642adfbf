"""A watchlist entry withdrawn before it expires: who withdrew it, when and why (the entry's status is `withdrawn`;
its templates and photo are destroyed as on expiry).

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("watchlist_entries") as batch:
        batch.add_column(sa.Column("withdrawn_by_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("withdraw_reason", sa.Text(), nullable=False, server_default=""))
        batch.create_foreign_key("fk_watchlist_entries_withdrawn_by", "users", ["withdrawn_by_id"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("watchlist_entries") as batch:
        batch.drop_constraint("fk_watchlist_entries_withdrawn_by", type_="foreignkey")
        batch.drop_column("withdraw_reason")
        batch.drop_column("withdrawn_at")
        batch.drop_column("withdrawn_by_id")
