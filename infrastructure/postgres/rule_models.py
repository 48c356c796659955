"""The tables of the registration rules (migration 0002): what staff set about courses,
sections and students, and the log of refused attempts the workers write."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    SmallInteger,
    String,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import UUID as PgUUID
from sqlalchemy.orm import Mapped, mapped_column

from infrastructure.postgres.models import Base


def _ref(target: str) -> Mapped[uuid.UUID]:
    return mapped_column(ForeignKey(target), primary_key=True)


def _new_id() -> Mapped[uuid.UUID]:
    return mapped_column(
        PgUUID(as_uuid=True), primary_key=True, server_default=text("gen_random_uuid()")
    )


class CoursePrerequisiteRow(Base):
    __tablename__ = "course_prerequisites"
    __table_args__ = (CheckConstraint("course_id <> prerequisite_id", name="not_itself"),)
    course_id: Mapped[uuid.UUID] = _ref("courses.course_id")
    prerequisite_id: Mapped[uuid.UUID] = _ref("courses.course_id")


class CompletedCourseRow(Base):
    __tablename__ = "completed_courses"
    student_id: Mapped[uuid.UUID] = _ref("students.student_id")
    course_id: Mapped[uuid.UUID] = _ref("courses.course_id")
    completed_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )


class HoldRow(Base):
    """A hold blocks registering while lifted_at is null; lifted ones stay as history."""

    __tablename__ = "holds"
    __table_args__ = (
        Index("idx_holds_student_active", "student_id", postgresql_where=text("lifted_at IS NULL")),
    )
    hold_id: Mapped[uuid.UUID] = _new_id()
    student_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("students.student_id"), nullable=False)
    reason: Mapped[str] = mapped_column(String(200), nullable=False)
    placed_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
    lifted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class TimeTicketRow(Base):
    __tablename__ = "time_tickets"
    __table_args__ = (CheckConstraint("closes_at > opens_at", name="window_ordered"),)
    student_id: Mapped[uuid.UUID] = _ref("students.student_id")
    semester_id: Mapped[uuid.UUID] = _ref("semesters.semester_id")
    opens_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    closes_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class SectionMeetingRow(Base):
    """`days` is a bitmask, bit 0 Monday to bit 6 Sunday; minutes count from midnight."""

    __tablename__ = "section_meetings"
    __table_args__ = (
        CheckConstraint("days > 0 AND days < 128", name="days"),
        CheckConstraint(
            "start_minute >= 0 AND start_minute < end_minute AND end_minute <= 1440",
            name="minutes",
        ),
        Index("idx_section_meetings_section", "section_id"),
    )
    meeting_id: Mapped[uuid.UUID] = _new_id()
    section_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("sections.section_id"), nullable=False)
    days: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    start_minute: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    end_minute: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    location: Mapped[str | None] = mapped_column(String(100))


class SectionLinkRow(Base):
    """Directed: to hold `section_id` a student must hold one of its linked sections."""

    __tablename__ = "section_links"
    __table_args__ = (CheckConstraint("section_id <> linked_section_id", name="not_itself"),)
    section_id: Mapped[uuid.UUID] = _ref("sections.section_id")
    linked_section_id: Mapped[uuid.UUID] = _ref("sections.section_id")


class RegistrationAttemptRow(Base):
    """A refused registration (a rule's reason), written in batches by the stream workers."""

    __tablename__ = "registration_attempts"
    __table_args__ = (
        Index("idx_registration_attempts_student_at", "student_id", text("attempted_at DESC")),
    )
    attempt_id: Mapped[uuid.UUID] = _new_id()
    student_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("students.student_id"), nullable=False)
    section_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("sections.section_id"), nullable=False)
    reason: Mapped[str] = mapped_column(String(40), nullable=False)
    attempted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    request_id: Mapped[str] = mapped_column(String(64), server_default=text("''"), nullable=False)
