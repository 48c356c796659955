"""The step list of a run: every start, grant (with its fault), reply and death, with ids
shown as the names of the run's world (S0, st2), so a failure reads as its interleaving."""

from __future__ import annotations

import dataclasses
from enum import Enum
from typing import TYPE_CHECKING, Any
from uuid import UUID

from tests.explorer.faults import Fault

if TYPE_CHECKING:
    from tests.explorer.scheduler import Action

WIDTH = 160
# Records shown by one field: the rest is static data that would drown the step list.
SHOWN_BY = {"SectionSetup": "section_id"}


def _brief(value: Any) -> str:
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, UUID):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        name = type(value).__name__
        if name in SHOWN_BY:
            return f"{name}({_brief(getattr(value, SHOWN_BY[name]))})"
        shown = [
            f"{f.name}={_brief(getattr(value, f.name))}"
            for f in dataclasses.fields(value)
            if getattr(value, f.name) not in (None, "", ())
        ]
        return f"{type(value).__name__}({', '.join(shown)})"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_brief(v) for v in value) + "]"
    if isinstance(value, BaseException):
        return f"{type(value).__name__}({value})"
    return str(value)


class Trace:
    def __init__(self, names: dict[str, str]) -> None:
        self.names = names
        self.lines: list[str] = []
        self.steps = 0
        self.last = "before any step"  # the action and gate of the last step granted
        self._open: dict[int, int] = {}  # action number -> index of its granted step's line

    def brief(self, value: Any) -> str:
        text = _brief(value)
        for long, short in self.names.items():
            text = text.replace(long, short)
        return text if len(text) <= WIDTH else text[: WIDTH - 3] + "..."

    def event(self, text: str) -> None:
        self.lines.append(f"      {self.brief(text)}")

    def grant(self, action: Action, label: str, fault: Fault) -> None:
        self.steps += 1
        self.last = f"{action.name} {label}"
        mark = f" [{fault.value}]" if fault is not Fault.NONE else ""
        self._open[action.number] = len(self.lines)
        self.lines.append(f"{self.steps:>5} {action.name} {label}{mark}")

    def reply(
        self,
        action: Action,
        label: str,
        fault: Fault,
        hit: bool,
        result: Any = None,
        error: BaseException | None = None,
    ) -> None:
        shown = self.brief(error if error is not None else result)
        missed = " (no round trip: fault unused)" if fault is not Fault.NONE and not hit else ""
        index = self._open.pop(action.number, None)
        if index is None:
            self.lines.append(f"      {action.name} {label} -> {shown}{missed}")
        else:
            self.lines[index] += f" -> {shown}{missed}"

    def text(self) -> str:
        return "\n".join(self.lines)
