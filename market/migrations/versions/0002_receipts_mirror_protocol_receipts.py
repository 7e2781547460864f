"""receipts mirror protocol receipts

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 09:22:35.250999
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Receipts now carry every field of protocol.receipts.Receipt; rows from 0001 get empty defaults.
    with op.batch_alter_table("receipts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("session_id", sa.String(length=66), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("model_id", sa.String(length=66), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("layer_start", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("layer_end", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("client", sa.String(length=42), nullable=False, server_default=""))
        batch_op.add_column(
            sa.Column("signature_verified", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.alter_column(
            "step_start", existing_type=sa.INTEGER(), type_=sa.BigInteger(), existing_nullable=False
        )
        batch_op.alter_column(
            "step_end", existing_type=sa.INTEGER(), type_=sa.BigInteger(), existing_nullable=False
        )
        batch_op.alter_column(
            "tokens", existing_type=sa.INTEGER(), type_=sa.BigInteger(), existing_nullable=False
        )


def downgrade() -> None:
    with op.batch_alter_table("receipts", schema=None) as batch_op:
        batch_op.alter_column(
            "tokens", existing_type=sa.BigInteger(), type_=sa.INTEGER(), existing_nullable=False
        )
        batch_op.alter_column(
            "step_end", existing_type=sa.BigInteger(), type_=sa.INTEGER(), existing_nullable=False
        )
        batch_op.alter_column(
            "step_start", existing_type=sa.BigInteger(), type_=sa.INTEGER(), existing_nullable=False
        )
        batch_op.drop_column("signature_verified")
        batch_op.drop_column("client")
        batch_op.drop_column("layer_end")
        batch_op.drop_column("layer_start")
        batch_op.drop_column("model_id")
        batch_op.drop_column("session_id")
