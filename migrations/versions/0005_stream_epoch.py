"""The lease epoch of each shard's owner in stream_offsets: a worker whose lease lapsed
cannot commit a batch once another worker took the shard over (review F6).

Existing rows start at epoch 0; every lease epoch is 1 or more, so the first owner after
the upgrade takes each shard over as usual.

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "stream_offsets",
        sa.Column("epoch", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
    )


def downgrade() -> None:
    op.drop_column("stream_offsets", "epoch")
