"""A waitlist place taken to replace an enrolled section (swap): which one it replaces,
so a rebuild of the live state keeps the swap pending.

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("waitlist", sa.Column("swap_from", sa.UUID(), nullable=True))
    op.create_foreign_key(
        op.f("fk_waitlist_swap_from_sections"),
        "waitlist",
        "sections",
        ["swap_from"],
        ["section_id"],
    )


def downgrade() -> None:
    op.drop_constraint(op.f("fk_waitlist_swap_from_sections"), "waitlist", type_="foreignkey")
    op.drop_column("waitlist", "swap_from")
