"""Registration rules (contract/rules.graphql): course credits and prerequisites, students'
credit limits, holds, time tickets and completed courses, sections' meetings, links and
waitlist settings, and the log of refused attempts.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _fk(table: str, column: str, target: str, target_column: str | None = None) -> sa.Constraint:
    return sa.ForeignKeyConstraint(
        [column],
        [f"{target}.{target_column or column}"],
        name=op.f(f"fk_{table}_{column}_{target}"),
    )


def _add_columns() -> None:
    op.add_column(
        "courses",
        sa.Column("credits", sa.Numeric(4, 1), server_default=sa.text("3.0"), nullable=False),
    )
    op.create_check_constraint(
        op.f("ck_courses_credits_range"), "courses", "credits >= 0 AND credits <= 30"
    )
    op.add_column(
        "students",
        sa.Column("max_credits", sa.Numeric(4, 1), server_default=sa.text("18.0"), nullable=False),
    )
    op.create_check_constraint(
        op.f("ck_students_max_credits_range"), "students", "max_credits > 0 AND max_credits <= 60"
    )
    op.add_column("sections", sa.Column("waitlist_capacity", sa.Integer(), nullable=True))
    op.add_column(
        "sections",
        sa.Column(
            "waitlist_mode",
            sa.String(length=12),
            server_default=sa.text("'auto_enroll'"),
            nullable=False,
        ),
    )
    op.add_column(
        "sections",
        sa.Column("offer_hours", sa.Integer(), server_default=sa.text("24"), nullable=False),
    )
    op.create_check_constraint(
        op.f("ck_sections_waitlist_capacity_range"),
        "sections",
        "waitlist_capacity IS NULL OR waitlist_capacity >= 0",
    )
    op.create_check_constraint(
        op.f("ck_sections_waitlist_mode"), "sections", "waitlist_mode IN ('auto_enroll','offer')"
    )
    op.create_check_constraint(
        op.f("ck_sections_offer_hours_range"), "sections", "offer_hours > 0 AND offer_hours <= 720"
    )


def _course_and_student_tables() -> None:
    op.create_table(
        "course_prerequisites",
        sa.Column("course_id", sa.UUID(), nullable=False),
        sa.Column("prerequisite_id", sa.UUID(), nullable=False),
        sa.CheckConstraint(
            "course_id <> prerequisite_id", name=op.f("ck_course_prerequisites_not_itself")
        ),
        _fk("course_prerequisites", "course_id", "courses"),
        _fk("course_prerequisites", "prerequisite_id", "courses", "course_id"),
        sa.PrimaryKeyConstraint(
            "course_id", "prerequisite_id", name=op.f("pk_course_prerequisites")
        ),
    )
    op.create_table(
        "completed_courses",
        sa.Column("student_id", sa.UUID(), nullable=False),
        sa.Column("course_id", sa.UUID(), nullable=False),
        sa.Column(
            "completed_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        _fk("completed_courses", "student_id", "students"),
        _fk("completed_courses", "course_id", "courses"),
        sa.PrimaryKeyConstraint("student_id", "course_id", name=op.f("pk_completed_courses")),
    )
    op.create_table(
        "holds",
        sa.Column(
            "hold_id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False
        ),
        sa.Column("student_id", sa.UUID(), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column(
            "placed_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("lifted_at", sa.DateTime(timezone=True), nullable=True),
        _fk("holds", "student_id", "students"),
        sa.PrimaryKeyConstraint("hold_id", name=op.f("pk_holds")),
    )
    op.create_index(
        "idx_holds_student_active",
        "holds",
        ["student_id"],
        unique=False,
        postgresql_where=sa.text("lifted_at IS NULL"),
    )
    op.create_table(
        "time_tickets",
        sa.Column("student_id", sa.UUID(), nullable=False),
        sa.Column("semester_id", sa.UUID(), nullable=False),
        sa.Column("opens_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closes_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("closes_at > opens_at", name=op.f("ck_time_tickets_window_ordered")),
        _fk("time_tickets", "student_id", "students"),
        _fk("time_tickets", "semester_id", "semesters"),
        sa.PrimaryKeyConstraint("student_id", "semester_id", name=op.f("pk_time_tickets")),
    )


def _section_tables() -> None:
    op.create_table(
        "section_meetings",
        sa.Column(
            "meeting_id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False
        ),
        sa.Column("section_id", sa.UUID(), nullable=False),
        sa.Column("days", sa.SmallInteger(), nullable=False),
        sa.Column("start_minute", sa.SmallInteger(), nullable=False),
        sa.Column("end_minute", sa.SmallInteger(), nullable=False),
        sa.Column("location", sa.String(length=100), nullable=True),
        sa.CheckConstraint("days > 0 AND days < 128", name=op.f("ck_section_meetings_days")),
        sa.CheckConstraint(
            "start_minute >= 0 AND start_minute < end_minute AND end_minute <= 1440",
            name=op.f("ck_section_meetings_minutes"),
        ),
        _fk("section_meetings", "section_id", "sections"),
        sa.PrimaryKeyConstraint("meeting_id", name=op.f("pk_section_meetings")),
    )
    op.create_index(
        "idx_section_meetings_section", "section_meetings", ["section_id"], unique=False
    )
    op.create_table(
        "section_links",
        sa.Column("section_id", sa.UUID(), nullable=False),
        sa.Column("linked_section_id", sa.UUID(), nullable=False),
        sa.CheckConstraint(
            "section_id <> linked_section_id", name=op.f("ck_section_links_not_itself")
        ),
        _fk("section_links", "section_id", "sections"),
        _fk("section_links", "linked_section_id", "sections", "section_id"),
        sa.PrimaryKeyConstraint("section_id", "linked_section_id", name=op.f("pk_section_links")),
    )
    op.create_table(
        "registration_attempts",
        sa.Column(
            "attempt_id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False
        ),
        sa.Column("student_id", sa.UUID(), nullable=False),
        sa.Column("section_id", sa.UUID(), nullable=False),
        sa.Column("reason", sa.String(length=40), nullable=False),
        sa.Column("attempted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("request_id", sa.String(length=64), server_default=sa.text("''"), nullable=False),
        _fk("registration_attempts", "student_id", "students"),
        _fk("registration_attempts", "section_id", "sections"),
        sa.PrimaryKeyConstraint("attempt_id", name=op.f("pk_registration_attempts")),
    )
    op.create_index(
        "idx_registration_attempts_student_at",
        "registration_attempts",
        ["student_id", sa.text("attempted_at DESC")],
        unique=False,
    )


def upgrade() -> None:
    _add_columns()
    _course_and_student_tables()
    _section_tables()


def downgrade() -> None:
    op.drop_index("idx_registration_attempts_student_at", table_name="registration_attempts")
    op.drop_table("registration_attempts")
    op.drop_table("section_links")
    op.drop_index("idx_section_meetings_section", table_name="section_meetings")
    op.drop_table("section_meetings")
    op.drop_table("time_tickets")
    op.drop_index(
        "idx_holds_student_active",
        table_name="holds",
        postgresql_where=sa.text("lifted_at IS NULL"),
    )
    op.drop_table("holds")
    op.drop_table("completed_courses")
    op.drop_table("course_prerequisites")
    for table, name in (
        ("sections", "offer_hours_range"),
        ("sections", "waitlist_mode"),
        ("sections", "waitlist_capacity_range"),
        ("students", "max_credits_range"),
        ("courses", "credits_range"),
    ):
        op.drop_constraint(op.f(f"ck_{table}_{name}"), table, type_="check")
    op.drop_column("sections", "offer_hours")
    op.drop_column("sections", "waitlist_mode")
    op.drop_column("sections", "waitlist_capacity")
    op.drop_column("students", "max_credits")
    op.drop_column("courses", "credits")
