"""Unredacted originals (encrypted) beside redacted snapshots, legal holds, time-limited access grants.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("original", sa.Text(), nullable=False, server_default=""))
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(sa.Column("originals", sa.Text(), nullable=False, server_default="[]"))
    op.create_table(
        "legal_holds",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("case_ref", sa.String(100), nullable=False),
        sa.Column("object_type", sa.String(16), nullable=False),
        sa.Column("object_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_by", sa.Integer(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_legal_holds_case_ref", "legal_holds", ["case_ref"])
    op.create_table(
        "access_grants",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("granted_by", sa.Integer(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("justification", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_access_grants_user_id", "access_grants", ["user_id"])


def downgrade() -> None:
    op.drop_table("access_grants")
    op.drop_table("legal_holds")
    with op.batch_alter_table("alerts") as batch:
        batch.drop_column("originals")
    with op.batch_alter_table("events") as batch:
        batch.drop_column("original")
