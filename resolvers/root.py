"""The contract's entry points (Query, Mutation, Subscription), each delegating to a
resolver of this package, and the Schema they make."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import strawberry
from graphql import GraphQLError
from strawberry.extensions import DisableIntrospection, SchemaExtension, ValidationCache
from strawberry.extensions.runner import SchemaExtensionsRunner
from strawberry.types import ExecutionContext

from resolvers import catalog, live, registration
from resolvers import notifications as notify
from resolvers import rules as rule_changes
from resolvers.context import Info
from resolvers.fanout import LeanStreamRunner, SharedEventExecutor
from resolvers.objects import Course, Section, Student, TimeTicket
from schema.checks import RefusingParserCache, WebsocketSubscriptions
from schema.errors import CodedErrors, code_in_place
from schema.notifications import (
    NotificationPreferenceInput,
    WebhookSubscription,
    WebhookSubscriptionCreated,
)
from schema.rules import Hold, SectionRulesInput, SwapInput, SwapPayload
from schema.types import (
    ClaimPayload,
    Connection,
    CreateCourseInput,
    CreateSectionInput,
    CreateSemesterInput,
    CreateStudentInput,
    DropInput,
    DropPayload,
    RegisterInput,
    RegisterPayload,
    SeatUpdate,
    SectionFilter,
    Semester,
    WaitlistUpdate,
)
from schema.unset import given


@strawberry.type
class Query:
    @strawberry.field
    async def section(self, info: Info, id: UUID) -> Section | None:
        return await catalog.section(info, id)

    @strawberry.field
    async def sections(
        self,
        info: Info,
        filter: SectionFilter | None = strawberry.UNSET,
        first: int | None = 50,
        after: str | None = strawberry.UNSET,
    ) -> Connection[Section]:
        return await catalog.sections(info, given(filter), first, after)

    @strawberry.field(
        description="Public. Every semester, the latest registration window first "
        "(the live seat dashboard lists them)."
    )
    async def semesters(self, info: Info) -> list[Semester]:
        return await catalog.semesters(info)

    @strawberry.field
    async def student(self, info: Info, id: UUID) -> Student | None:
        return await catalog.student(info, id)

    @strawberry.field(description="The student named by the token's sub claim.")
    async def me(self, info: Info) -> Student | None:
        return await catalog.me(info)

    @strawberry.field(description="Staff only: where notifications are posted as webhooks.")
    async def webhook_subscriptions(self, info: Info) -> list[WebhookSubscription]:
        return await notify.webhook_subscriptions(info)


@strawberry.type
class Mutation:
    @strawberry.mutation(description="A student for themself, or staff for anyone.")
    async def register(self, info: Info, input: RegisterInput) -> RegisterPayload:
        return await registration.register(info, input)

    @strawberry.mutation
    async def drop(self, info: Info, input: DropInput) -> DropPayload:
        return await registration.drop(info, input)

    @strawberry.mutation(description="A student for themself, or staff.")
    async def swap(self, info: Info, input: SwapInput) -> SwapPayload:
        return await registration.swap(info, input)

    @strawberry.mutation
    async def claim_seat(self, info: Info, student_id: UUID, section_id: UUID) -> ClaimPayload:
        return await registration.claim_seat(info, student_id, section_id)

    @strawberry.mutation
    async def decline_offer(self, info: Info, student_id: UUID, section_id: UUID) -> ClaimPayload:
        return await registration.decline_offer(info, student_id, section_id)

    @strawberry.mutation(description="Staff only.")
    async def create_semester(self, info: Info, input: CreateSemesterInput) -> Semester:
        return await catalog.create_semester(info, input)

    @strawberry.mutation
    async def create_course(self, info: Info, input: CreateCourseInput) -> Course:
        return await catalog.create_course(info, input)

    @strawberry.mutation
    async def create_section(self, info: Info, input: CreateSectionInput) -> Section:
        return await catalog.create_section(info, input)

    @strawberry.mutation
    async def create_student(self, info: Info, input: CreateStudentInput) -> Student:
        return await catalog.create_student(info, input)

    @strawberry.mutation(
        description="Raising capacity promotes waitlisted students at once; lowering below "
        "the enrolled count is BAD_USER_INPUT."
    )
    async def set_section_capacity(self, info: Info, section_id: UUID, total_seats: int) -> Section:
        return await catalog.set_section_capacity(info, section_id, total_seats)

    @strawberry.mutation
    async def set_student_status(
        self, info: Info, student_id: UUID, enrollment_status: str
    ) -> Student:
        return await catalog.set_student_status(info, student_id, enrollment_status)

    @strawberry.mutation(description="Staff only.")
    async def set_course_rules(
        self,
        info: Info,
        course_id: UUID,
        credits: float | None = strawberry.UNSET,
        prerequisite_course_ids: list[UUID] | None = strawberry.UNSET,
    ) -> Course:
        return await rule_changes.set_course_rules(
            info, course_id, given(credits), given(prerequisite_course_ids)
        )

    @strawberry.mutation
    async def set_section_rules(
        self, info: Info, section_id: UUID, input: SectionRulesInput
    ) -> Section:
        return await rule_changes.set_section_rules(info, section_id, input)

    @strawberry.mutation
    async def place_hold(self, info: Info, student_id: UUID, reason: str) -> Hold:
        return await rule_changes.place_hold(info, student_id, reason)

    @strawberry.mutation
    async def lift_hold(self, info: Info, hold_id: UUID) -> Student:
        return await rule_changes.lift_hold(info, hold_id)

    @strawberry.mutation
    async def set_time_ticket(
        self,
        info: Info,
        student_id: UUID,
        semester_id: UUID,
        opens_at: datetime,
        closes_at: datetime,
    ) -> TimeTicket:
        return await rule_changes.set_time_ticket(
            info, student_id, semester_id, opens_at, closes_at
        )

    @strawberry.mutation
    async def set_max_credits(self, info: Info, student_id: UUID, max_credits: float) -> Student:
        return await rule_changes.set_max_credits(info, student_id, max_credits)

    @strawberry.mutation
    async def record_completed_course(
        self, info: Info, student_id: UUID, course_id: UUID
    ) -> Student:
        return await rule_changes.record_completed_course(info, student_id, course_id)

    @strawberry.mutation(
        description="The student themself or staff: e-mail on or off per kind (kinds not "
        "named keep their choice)."
    )
    async def set_notification_preferences(
        self, info: Info, student_id: UUID, preferences: list[NotificationPreferenceInput]
    ) -> Student:
        return await notify.set_notification_preferences(info, student_id, preferences)

    @strawberry.mutation(
        description="Staff only. Every notification from now on is posted to `url`, signed "
        "as Standard Webhooks specifies with `secret` (whsec_...; made if not given)."
    )
    async def add_webhook_subscription(
        self, info: Info, url: str, secret: str | None = None, description: str | None = None
    ) -> WebhookSubscriptionCreated:
        return await notify.add_webhook_subscription(info, url, secret, description)

    @strawberry.mutation(description="Staff only; its deliveries not yet sent go with it.")
    async def remove_webhook_subscription(self, info: Info, id: UUID) -> bool:
        return await notify.remove_webhook_subscription(info, id)


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="Public. First one snapshot per section, then every change."
    )
    async def seat_updates(
        self, info: Info, section_ids: list[UUID]
    ) -> AsyncGenerator[SeatUpdate, None]:
        return await live.seat_updates(info, section_ids)

    @strawberry.subscription(
        description="The student themself or staff. First the current state, then every change "
        "of this student's rank or status; completes right after a final state."
    )
    async def waitlist_position(
        self, info: Info, student_id: UUID, section_id: UUID
    ) -> AsyncGenerator[WaitlistUpdate, None]:
        return await live.waitlist_position(info, student_id, section_id)


ExtensionFactory = Callable[[], SchemaExtension]


def build_schema(
    introspection: bool = True,
    limits: Sequence[ExtensionFactory] = (),
    observers: Sequence[ExtensionFactory] = (),
) -> strawberry.Schema:
    """`observers` (metrics) come first, so they see each operation whole."""
    # Factories: a fresh extension per request; the document caches are shared by maxsize.
    extensions: list[type[SchemaExtension] | ExtensionFactory] = [
        *observers,
        CodedErrors,
        WebsocketSubscriptions,
        lambda: RefusingParserCache(maxsize=1024),
        lambda: ValidationCache(maxsize=1024),
        *limits,
    ]
    if not introspection:
        extensions.append(DisableIntrospection)
    return CourseregSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=extensions,
        execution_context_class=SharedEventExecutor,  # seatUpdates events executed once
    )


class CourseregSchema(strawberry.Schema):
    def create_extensions_runner(
        self, execution_context: ExecutionContext, extensions: list[SchemaExtension]
    ) -> SchemaExtensionsRunner:
        return LeanStreamRunner(execution_context=execution_context, extensions=extensions)

    def process_errors(self, errors: list[GraphQLError], execution_context: Any = None) -> None:
        """Client mistakes and refusals are answers, not server errors: nothing to log here
        (coded() logs the unexpected ones with their request id). Strawberry calls this with
        every result's errors, also those CodedErrors never sees (a syntax error)."""
        context = getattr(execution_context, "context", None)
        code_in_place(errors, getattr(context, "request_id", "-"))


schema = build_schema()
