"""Registrations partitioned by semester (PARTITION BY LIST (semester_id)), data kept.

Each row now carries its section's semester, which a composite foreign key to
sections (section_id, semester_id) keeps true. The seed's unique (student, section) becomes
unique (semester, student, section) per partition: the same thing, since a section belongs
to one semester. One partition per semester, named registrations_<semester id, hex>: made
here for the semesters there are, and by an insert trigger on semesters for every new one
(createSemester, seeds, anything), in the transaction that adds the semester. The waitlist
stays one table: a live queue whose rows leave when served, no history.

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = (
    "registration_id, student_id, section_id, status, registration_date, dropped_date, "
    "created_at, updated_at, version"
)

PARTITION_FUNCTION = """
CREATE FUNCTION registrations_partition(semester uuid) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE format(
    'CREATE TABLE IF NOT EXISTS %I PARTITION OF registrations FOR VALUES IN (%L)',
    'registrations_' || replace(semester::text, '-', ''), semester);
END $$
"""

TRIGGER_FUNCTION = """
CREATE FUNCTION semesters_partitions() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM registrations_partition(NEW.semester_id);
  RETURN NEW;
END $$
"""


def _timestamps() -> list[sa.Column]:
    return [
        sa.Column(name, sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False)
        for name in ("registration_date", "created_at", "updated_at")
    ]


def _partitioned_table() -> None:
    registration_date, created_at, updated_at = _timestamps()
    op.create_table(
        "registrations",
        sa.Column(
            "registration_id",
            sa.UUID(),
            server_default=sa.text("gen_random_uuid()"),
            nullable=False,
        ),
        sa.Column("semester_id", sa.UUID(), nullable=False),
        sa.Column("student_id", sa.UUID(), nullable=False),
        sa.Column("section_id", sa.UUID(), nullable=False),
        sa.Column(
            "status", sa.String(length=20), server_default=sa.text("'enrolled'"), nullable=False
        ),
        registration_date,
        sa.Column("dropped_date", sa.DateTime(timezone=True), nullable=True),
        created_at,
        updated_at,
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.CheckConstraint(
            "status IN ('enrolled','dropped')", name=op.f("ck_registrations_status")
        ),
        sa.ForeignKeyConstraint(
            ["section_id", "semester_id"],
            ["sections.section_id", "sections.semester_id"],
            name=op.f("fk_registrations_section_id_sections"),
        ),
        sa.ForeignKeyConstraint(
            ["student_id"],
            ["students.student_id"],
            name=op.f("fk_registrations_student_id_students"),
        ),
        sa.PrimaryKeyConstraint("registration_id", "semester_id", name=op.f("pk_registrations")),
        sa.UniqueConstraint(
            "semester_id",
            "student_id",
            "section_id",
            name="uq_registrations_semester_student_section",
        ),
        postgresql_partition_by="LIST (semester_id)",
    )
    op.create_index(
        "idx_registrations_section_status", "registrations", ["section_id", "status"], unique=False
    )
    op.create_index(
        "idx_registrations_student_section",
        "registrations",
        ["student_id", "section_id"],
        unique=False,
    )


def upgrade() -> None:
    op.create_unique_constraint(
        "uq_sections_section_semester", "sections", ["section_id", "semester_id"]
    )
    op.rename_table("registrations", "registrations_unpartitioned")
    # Index names are per schema: the new table takes them over.
    op.drop_constraint("uq_registrations_student_section", "registrations_unpartitioned")
    op.drop_constraint("pk_registrations", "registrations_unpartitioned")
    op.drop_index("idx_registrations_student_section", "registrations_unpartitioned")
    op.drop_index("idx_registrations_section_status", "registrations_unpartitioned")
    _partitioned_table()
    op.execute(PARTITION_FUNCTION)
    op.execute(TRIGGER_FUNCTION)
    op.execute(
        "CREATE TRIGGER semesters_partitions AFTER INSERT ON semesters "
        "FOR EACH ROW EXECUTE FUNCTION semesters_partitions()"
    )
    op.execute("SELECT registrations_partition(semester_id) FROM semesters")
    op.execute(
        f"INSERT INTO registrations (semester_id, {COLUMNS}) "
        f"SELECT s.semester_id, {', '.join('r.' + c for c in COLUMNS.split(', '))} "
        "FROM registrations_unpartitioned r JOIN sections s USING (section_id)"
    )
    op.drop_table("registrations_unpartitioned")


def downgrade() -> None:
    op.rename_table("registrations", "registrations_partitioned")
    op.drop_constraint("uq_registrations_semester_student_section", "registrations_partitioned")
    op.drop_constraint("pk_registrations", "registrations_partitioned")
    op.drop_index("idx_registrations_student_section", "registrations_partitioned")
    op.drop_index("idx_registrations_section_status", "registrations_partitioned")
    registration_date, created_at, updated_at = _timestamps()
    op.create_table(
        "registrations",
        sa.Column(
            "registration_id",
            sa.UUID(),
            server_default=sa.text("gen_random_uuid()"),
            nullable=False,
        ),
        sa.Column("student_id", sa.UUID(), nullable=False),
        sa.Column("section_id", sa.UUID(), nullable=False),
        sa.Column(
            "status", sa.String(length=20), server_default=sa.text("'enrolled'"), nullable=False
        ),
        registration_date,
        sa.Column("dropped_date", sa.DateTime(timezone=True), nullable=True),
        created_at,
        updated_at,
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.CheckConstraint(
            "status IN ('enrolled','dropped')", name=op.f("ck_registrations_status")
        ),
        sa.ForeignKeyConstraint(
            ["section_id"],
            ["sections.section_id"],
            name=op.f("fk_registrations_section_id_sections"),
        ),
        sa.ForeignKeyConstraint(
            ["student_id"],
            ["students.student_id"],
            name=op.f("fk_registrations_student_id_students"),
        ),
        sa.PrimaryKeyConstraint("registration_id", name=op.f("pk_registrations")),
        sa.UniqueConstraint("student_id", "section_id", name="uq_registrations_student_section"),
    )
    op.create_index(
        "idx_registrations_section_status", "registrations", ["section_id", "status"], unique=False
    )
    op.create_index(
        "idx_registrations_student_section",
        "registrations",
        ["student_id", "section_id"],
        unique=False,
    )
    op.execute(
        f"INSERT INTO registrations ({COLUMNS}) SELECT {COLUMNS} FROM registrations_partitioned"
    )
    op.drop_table("registrations_partitioned")  # and its partitions
    op.execute("DROP TRIGGER semesters_partitions ON semesters")
    op.execute("DROP FUNCTION semesters_partitions()")
    op.execute("DROP FUNCTION registrations_partition(uuid)")
    op.drop_constraint("uq_sections_section_semester", "sections")
