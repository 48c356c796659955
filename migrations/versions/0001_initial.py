"""The seed design's six tables, and the stream workers' per-shard watermark.

Revision ID: 0001
Revises:
Create Date: 2026-11-25 08:51:51.413780
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "courses",
        sa.Column(
            "course_id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False
        ),
        sa.Column("course_code", sa.String(length=20), nullable=False),
        sa.Column("course_name", sa.String(length=200), nullable=False),
        sa.Column("is_active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.PrimaryKeyConstraint("course_id", name=op.f("pk_courses")),
        sa.UniqueConstraint("course_code", name=op.f("uq_courses_course_code")),
    )
    op.create_table(
        "semesters",
        sa.Column(
            "semester_id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False
        ),
        sa.Column("semester_name", sa.String(length=50), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=False),
        sa.Column("registration_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("registration_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("is_active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.CheckConstraint("end_date >= start_date", name=op.f("ck_semesters_dates_ordered")),
        sa.CheckConstraint(
            "registration_end > registration_start", name=op.f("ck_semesters_window_ordered")
        ),
        sa.PrimaryKeyConstraint("semester_id", name=op.f("pk_semesters")),
    )
    op.create_table(
        "stream_offsets",
        sa.Column("shard", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("last_id", sa.String(length=41), nullable=False),
        sa.Column("applied", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("shard", name=op.f("pk_stream_offsets")),
    )
    op.create_table(
        "students",
        sa.Column(
            "student_id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False
        ),
        sa.Column("student_number", sa.String(length=20), nullable=False),
        sa.Column("first_name", sa.String(length=100), nullable=False),
        sa.Column("last_name", sa.String(length=100), nullable=False),
        sa.Column("email", sa.String(length=255), nullable=False),
        sa.Column(
            "enrollment_status",
            sa.String(length=20),
            server_default=sa.text("'active'"),
            nullable=False,
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.CheckConstraint(
            "enrollment_status IN ('active','inactive','suspended','graduated','withdrawn')",
            name=op.f("ck_students_enrollment_status"),
        ),
        sa.PrimaryKeyConstraint("student_id", name=op.f("pk_students")),
        sa.UniqueConstraint("email", name=op.f("uq_students_email")),
        sa.UniqueConstraint("student_number", name=op.f("uq_students_student_number")),
    )
    op.create_index("idx_students_student_number", "students", ["student_number"], unique=False)
    op.create_table(
        "sections",
        sa.Column(
            "section_id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False
        ),
        sa.Column("course_id", sa.UUID(), nullable=False),
        sa.Column("semester_id", sa.UUID(), nullable=False),
        sa.Column("section_number", sa.String(length=10), nullable=False),
        sa.Column("total_seats", sa.Integer(), nullable=False),
        sa.Column("is_active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.CheckConstraint("total_seats > 0", name=op.f("ck_sections_total_seats_positive")),
        sa.ForeignKeyConstraint(
            ["course_id"], ["courses.course_id"], name=op.f("fk_sections_course_id_courses")
        ),
        sa.ForeignKeyConstraint(
            ["semester_id"],
            ["semesters.semester_id"],
            name=op.f("fk_sections_semester_id_semesters"),
        ),
        sa.PrimaryKeyConstraint("section_id", name=op.f("pk_sections")),
        sa.UniqueConstraint(
            "course_id", "semester_id", "section_number", name="uq_sections_course_semester_number"
        ),
    )
    op.create_index(
        "idx_sections_course_semester", "sections", ["course_id", "semester_id"], unique=False
    )
    op.create_index(
        "idx_sections_semester_active",
        "sections",
        ["semester_id", "is_active"],
        unique=False,
        postgresql_where=sa.text("is_active = true"),
    )
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
        sa.Column(
            "registration_date",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("dropped_date", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
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
    op.create_table(
        "waitlist",
        sa.Column(
            "waitlist_id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False
        ),
        sa.Column("student_id", sa.UUID(), nullable=False),
        sa.Column("section_id", sa.UUID(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column(
            "timestamp", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("position > 0", name=op.f("ck_waitlist_position_positive")),
        sa.ForeignKeyConstraint(
            ["section_id"], ["sections.section_id"], name=op.f("fk_waitlist_section_id_sections")
        ),
        sa.ForeignKeyConstraint(
            ["student_id"], ["students.student_id"], name=op.f("fk_waitlist_student_id_students")
        ),
        sa.PrimaryKeyConstraint("waitlist_id", name=op.f("pk_waitlist")),
        sa.UniqueConstraint("student_id", "section_id", name="uq_waitlist_student_section"),
    )
    op.create_index(
        "idx_waitlist_section_position", "waitlist", ["section_id", "position"], unique=False
    )


def downgrade() -> None:
    op.drop_index("idx_waitlist_section_position", table_name="waitlist")
    op.drop_table("waitlist")
    op.drop_index("idx_registrations_student_section", table_name="registrations")
    op.drop_index("idx_registrations_section_status", table_name="registrations")
    op.drop_table("registrations")
    op.drop_index(
        "idx_sections_semester_active",
        table_name="sections",
        postgresql_where=sa.text("is_active = true"),
    )
    op.drop_index("idx_sections_course_semester", table_name="sections")
    op.drop_table("sections")
    op.drop_index("idx_students_student_number", table_name="students")
    op.drop_table("students")
    op.drop_table("stream_offsets")
    op.drop_table("semesters")
    op.drop_table("courses")
