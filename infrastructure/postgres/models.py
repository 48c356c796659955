"""The tables of the seed design (names, columns, keys, uniques, checks, indexes), plus the
per-shard watermark the stream workers keep. Alembic's migrations create them."""

from __future__ import annotations

import re
import uuid
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import UUID as PgUUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# registrations_<semester id, hex>: one partition per semester, made by a trigger on
# semesters (migration 0004), so not declared here.
PARTITION = re.compile(r"registrations_[0-9a-f]{32}")


def declared(name: str | None, type_: str, parent_names: object) -> bool:
    """Alembic's include_name: compare what the models declare, not the partitions."""
    return not (type_ == "table" and name is not None and PARTITION.fullmatch(name))


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def _id() -> Mapped[uuid.UUID]:
    return mapped_column(
        PgUUID(as_uuid=True), primary_key=True, server_default=text("gen_random_uuid()")
    )


def _created() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)


def _updated() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)


def _version() -> Mapped[int]:
    return mapped_column(Integer, server_default=text("1"), nullable=False)


class StudentRow(Base):
    __tablename__ = "students"
    __table_args__ = (
        CheckConstraint(
            "enrollment_status IN ('active','inactive','suspended','graduated','withdrawn')",
            name="enrollment_status",
        ),
        CheckConstraint("max_credits > 0 AND max_credits <= 60", name="max_credits_range"),
        Index("idx_students_student_number", "student_number"),
    )
    student_id: Mapped[uuid.UUID] = _id()
    student_number: Mapped[str] = mapped_column(String(20), unique=True, nullable=False)
    first_name: Mapped[str] = mapped_column(String(100), nullable=False)
    last_name: Mapped[str] = mapped_column(String(100), nullable=False)
    email: Mapped[str] = mapped_column(String(255), unique=True, nullable=False)
    enrollment_status: Mapped[str] = mapped_column(
        String(20), server_default=text("'active'"), nullable=False
    )
    max_credits: Mapped[Decimal] = mapped_column(
        Numeric(4, 1), server_default=text("18.0"), nullable=False
    )
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()
    version: Mapped[int] = _version()


class CourseRow(Base):
    __tablename__ = "courses"
    __table_args__ = (CheckConstraint("credits >= 0 AND credits <= 30", name="credits_range"),)
    course_id: Mapped[uuid.UUID] = _id()
    course_code: Mapped[str] = mapped_column(String(20), unique=True, nullable=False)
    course_name: Mapped[str] = mapped_column(String(200), nullable=False)
    credits: Mapped[Decimal] = mapped_column(
        Numeric(4, 1), server_default=text("3.0"), nullable=False
    )
    is_active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"), nullable=False)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()
    version: Mapped[int] = _version()


class SemesterRow(Base):
    __tablename__ = "semesters"
    __table_args__ = (
        CheckConstraint("end_date >= start_date", name="dates_ordered"),
        CheckConstraint("registration_end > registration_start", name="window_ordered"),
    )
    semester_id: Mapped[uuid.UUID] = _id()
    semester_name: Mapped[str] = mapped_column(String(50), nullable=False)
    start_date: Mapped[date] = mapped_column(Date, nullable=False)
    end_date: Mapped[date] = mapped_column(Date, nullable=False)
    registration_start: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    registration_end: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    is_active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"), nullable=False)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()
    version: Mapped[int] = _version()


class SectionRow(Base):
    __tablename__ = "sections"
    __table_args__ = (
        CheckConstraint("total_seats > 0", name="total_seats_positive"),
        CheckConstraint(
            "waitlist_capacity IS NULL OR waitlist_capacity >= 0", name="waitlist_capacity_range"
        ),
        CheckConstraint("waitlist_mode IN ('auto_enroll','offer')", name="waitlist_mode"),
        CheckConstraint("offer_hours > 0 AND offer_hours <= 720", name="offer_hours_range"),
        UniqueConstraint(
            "course_id", "semester_id", "section_number", name="uq_sections_course_semester_number"
        ),
        # The target of registrations' (section, semester) key: a row's semester is its
        # section's (migration 0004).
        UniqueConstraint("section_id", "semester_id", name="uq_sections_section_semester"),
        Index("idx_sections_course_semester", "course_id", "semester_id"),
        Index(
            "idx_sections_semester_active",
            "semester_id",
            "is_active",
            postgresql_where=text("is_active = true"),
        ),
    )
    section_id: Mapped[uuid.UUID] = _id()
    course_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("courses.course_id"), nullable=False)
    semester_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("semesters.semester_id"), nullable=False
    )
    section_number: Mapped[str] = mapped_column(String(10), nullable=False)
    total_seats: Mapped[int] = mapped_column(Integer, nullable=False)
    is_active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"), nullable=False)
    # Null: an unlimited waitlist.
    waitlist_capacity: Mapped[int | None] = mapped_column(Integer)
    waitlist_mode: Mapped[str] = mapped_column(
        String(12), server_default=text("'auto_enroll'"), nullable=False
    )
    offer_hours: Mapped[int] = mapped_column(Integer, server_default=text("24"), nullable=False)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()
    version: Mapped[int] = _version()


class RegistrationRow(Base):
    """Partitioned by semester (migration 0004): one partition per semester, made by the
    semesters table's insert trigger. The seed's unique (student, section) holds per
    partition as (semester, student, section); a query naming the semester reads one."""

    __tablename__ = "registrations"
    __table_args__ = (
        CheckConstraint("status IN ('enrolled','dropped')", name="status"),
        UniqueConstraint(
            "semester_id",
            "student_id",
            "section_id",
            name="uq_registrations_semester_student_section",
        ),
        ForeignKeyConstraint(
            ["section_id", "semester_id"],
            ["sections.section_id", "sections.semester_id"],
            name="fk_registrations_section_id_sections",
        ),
        Index("idx_registrations_student_section", "student_id", "section_id"),
        Index("idx_registrations_section_status", "section_id", "status"),
        {"postgresql_partition_by": "LIST (semester_id)"},
    )
    registration_id: Mapped[uuid.UUID] = _id()
    semester_id: Mapped[uuid.UUID] = mapped_column(PgUUID(as_uuid=True), primary_key=True)
    student_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("students.student_id"), nullable=False)
    section_id: Mapped[uuid.UUID] = mapped_column(PgUUID(as_uuid=True), nullable=False)
    status: Mapped[str] = mapped_column(
        String(20), server_default=text("'enrolled'"), nullable=False
    )
    registration_date: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
    dropped_date: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()
    version: Mapped[int] = _version()


class WaitlistRow(Base):
    __tablename__ = "waitlist"
    __table_args__ = (
        CheckConstraint("position > 0", name="position_positive"),
        UniqueConstraint("student_id", "section_id", name="uq_waitlist_student_section"),
        Index("idx_waitlist_section_position", "section_id", "position"),
    )
    waitlist_id: Mapped[uuid.UUID] = _id()
    student_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("students.student_id"), nullable=False)
    section_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("sections.section_id"), nullable=False)
    # The join sequence (FIFO key); the 1-based rank users see is derived from it.
    position: Mapped[int] = mapped_column(Integer, nullable=False)
    timestamp: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Set when the place was taken to replace this enrolled section (swap).
    swap_from: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("sections.section_id"))
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class StreamOffsetRow(Base):
    """The last stream entry applied per shard, written in the same transaction as the
    entries themselves: a batch replayed after a crash is skipped, so each change lands
    exactly once, including rows a later change deleted. `epoch` is the lease epoch of the
    shard's owner (domain/leases.py): a batch of any other epoch is refused."""

    __tablename__ = "stream_offsets"
    shard: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_id: Mapped[str] = mapped_column(String(41), nullable=False)
    applied: Mapped[int] = mapped_column(BigInteger, server_default=text("0"), nullable=False)
    epoch: Mapped[int] = mapped_column(BigInteger, server_default=text("0"), nullable=False)
    updated_at: Mapped[datetime] = _updated()
