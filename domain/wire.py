"""The formats the Lua scripts (infrastructure/redis/*.lua) and the Python adapters share:
one owner for each field name, its meaning and the format's version.

The scripts spell these names themselves (Lua cannot import them);
tests/unit/test_wire.py parses every XADD, PUBLISH and JSON field of the .lua files and
checks each name against this module, so a name exists here before a script writes it.

Version: a change an older reader would misread (a field renamed, or given a new meaning)
bumps the version of its format and keeps a reader for the old one while old entries can
still be around (ChangeKind.SWAP_WAIT is such a reader: a kind only old streams hold).
"""

from __future__ import annotations

from enum import StrEnum

# The stream entry format of this module's StreamField.
STREAM_VERSION = 1


class StreamField(StrEnum):
    """A shard stream's entry: one persistence change (domain/changes.py Change), written
    by the section scripts' XADD (and append.lua for the attempts log), read by the
    persister (infrastructure/redis/streams.py). All values are text."""

    KIND = "k"  # what changed: domain.changes.ChangeKind
    SECTION = "s"  # section id
    STUDENT = "u"  # student id (every kind but capacity)
    TOTAL = "n"  # capacity: the new total of seats
    EXPIRES = "x"  # offer: when it lapses (epoch ms)
    REASON = "why"  # attempt: the refusal (Rejection); leave: why the student left the line
    VERSION = "v"  # the section's version after the change (0: the attempts log)
    SEQUENCE = "q"  # join: the waitlist join sequence
    REPLACES = "f"  # join: the enrolled section the place would replace (a swap left waiting)
    AT = "at"  # when (epoch ms of Redis's clock)
    REQUEST = "rid"  # the request that made the change ('' none)


# The order every writer keeps (an entry leaves out the fields its kind has not).
STREAM_FIELDS = tuple(StreamField)


class DeadLetterField(StrEnum):
    """Added to a change's own fields when it is dead-lettered (streams.py dead_letter)."""

    SOURCE_ID = "source_id"  # the entry's id in its shard's stream
    ERROR = "error"  # why it could not be applied (at most 2000 characters)
    SHARD = "shard"


class EventField(StrEnum):
    """A section's live event: JSON published on its channel by every script that changes
    it (register.lua's literal, lib/line.lua `publish` for the others), decoded by
    infrastructure/redis/events.py into domain.live.SectionEvent."""

    SECTION = "s"
    VERSION = "v"  # the section's version after the change
    AVAILABLE = "a"  # available seats
    TOTAL = "t"  # total seats
    WAITLIST = "w"  # waitlist length
    KIND = "k"  # EventKind
    STUDENT = "u"  # the student acted for
    RANK = "r"  # the 1-based rank that left the waitlist (0 if none)
    PROMOTED_COUNT = "h"  # how many were promoted from the head of the line
    PROMOTED = "p"  # the students promoted from the head, in order (enrolled)
    ENROLLED = "e"  # a student who claimed a seat held for them (enrolled)
    OFFERED = "o"  # students offered a seat (they stay in line) ...
    EXPIRES = "x"  # ... until then (epoch ms)
    PENDING = "q"  # students a seat is held for while the rules are checked again
    REASON = "why"  # why the student was removed from the line


class EventKind(StrEnum):
    """What a live event reports (its `k`)."""

    ENROLL = "enroll"
    JOIN = "join"  # joined the waitlist
    DROP = "drop"
    LEAVE = "leave"  # left the waitlist
    CAPACITY = "capacity"
    LOAD = "load"  # load_section.lua: a rebuild handed seats to the line
    # resolve.lua: a seat held for a student in line was settled; its action (ARGV[5]) is
    # the kind it publishes
    CLAIM = "claim"
    SKIP = "skip"  # they would break a rule: removed from the line
    DECLINE = "decline"
    EXPIRE = "expire"


class SectionField(StrEnum):
    """A section's compact rule JSON (infrastructure/redis/rules.py rules_json): stored in
    its meta hash (`rules`), read by the student scripts (reserve.lua and confirm.lua, one
    per section checked) and decoded back into domain.rules.SectionRules."""

    ID = "id"  # section id
    COURSE = "c"  # course id
    CREDITS = "cr"
    MEETINGS = "m"  # meeting intervals [[start, end), ...] in minutes of the week
    LINKED = "l"  # linked section ids (a lecture's labs)
    PREREQUISITES = "p"  # prerequisite course ids
    OPENS = "o"  # the semester's registration window (epoch ms) ...
    CLOSES = "x"  # ... and its end
    # Python only: what rebuilds the domain's SectionRules
    SEMESTER = "sem"
    MEETING_TIMES = "mt"  # [[days], start, end, location] per meeting
    WAITLIST_CAPACITY = "wc"
    WAITLIST_MODE = "wm"
    OFFER_HOURS = "oh"


class HoldingField(StrEnum):
    """A student's holding: the JSON entry per section in their holdings hash of a
    semester (lib/holding.lua; the state machine is docs/holdings.md)."""

    STATE = "h"  # domain.rules.Holding
    COURSE = "c"  # as in SectionField
    CREDITS = "cr"
    MEETINGS = "m"
    LINKED = "l"
    DEADLINE = "dl"  # of an R, P or D (epoch ms): the sweeper settles it after that
    OPERATION = "op"  # the operation that owns an R, P or D, or settled the holding last
    REPLACES = "sw"  # the enrolled section this one is to replace (a swap)
    WAS = "was"  # a D's state before it began leaving ('-': not held)


class StudentFact(StrEnum):
    """What staff set for a student, as load_student.lua takes it (JSON) and keeps it in
    the student's hash."""

    HOLDS = "holds"  # how many holds are placed
    MAX_CREDITS = "maxcr"  # absent: the default limit
    TICKETS = "tk"  # semester id -> "opens,closes" (epoch ms); in the hash: tk:<semester>
