"""A case's life cycle (办件流程), pure: states, the transitions allowed between them, deadlines, events.

submitted ─┬─ request_corrections (every missing or defective item at once) ─► corrections_requested
           │                                                    resubmit ◄─┘  ─► resubmitted
           ├─ accept ─► accepted ─ review ─► reviewed ─ decide ─► decided ─ deliver ─► delivered
           └─ reject ─► rejected                (suspend ⇄ resume and one postpone before the decision)

Guo Fa [2016] No. 55 II(2): corrections are notified at one time, so a case gets one correction notice.
Hubei-style measures Art. 14: suspension and postponement carry reasons and move the deadline.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta, timezone
from enum import StrEnum
from typing import Any

from adapters.cases.working_days import add_working_days, working_days_between

CHINA = timezone(timedelta(hours=8), "CST")  # deadlines are calendar days in China
MAX_REASON = 500
MAX_CORRECTION = 200
MAX_CORRECTIONS = 50
MAX_POSTPONE_DAYS = 30


class Status(StrEnum):
    SUBMITTED = "submitted"  # 已提交
    CORRECTIONS_REQUESTED = "corrections_requested"  # 待补正
    RESUBMITTED = "resubmitted"  # 已补正
    ACCEPTED = "accepted"  # 已受理
    REVIEWED = "reviewed"  # 已审查
    SUSPENDED = "suspended"  # 已中止
    DECIDED = "decided"  # 已决定
    DELIVERED = "delivered"  # 已送达
    REJECTED = "rejected"  # 不予受理


STATUS_LABELS = {
    Status.SUBMITTED: "已提交，待预审",
    Status.CORRECTIONS_REQUESTED: "待补正",
    Status.RESUBMITTED: "已补正，待预审",
    Status.ACCEPTED: "已受理",
    Status.REVIEWED: "已审查",
    Status.SUSPENDED: "已中止",
    Status.DECIDED: "已决定",
    Status.DELIVERED: "已送达",
    Status.REJECTED: "不予受理",
}
ACTION_LABELS = {
    "submit": "提交申请",
    "request_corrections": "一次性告知补正",
    "resubmit": "补正后重新提交",
    "accept": "受理",
    "reject": "不予受理",
    "review": "审查",
    "decide": "作出决定",
    "deliver": "送达",
    "suspend": "中止",
    "resume": "恢复",
    "postpone": "延期",
    "rate": "满意度评价",
}
PRE_REVIEW = (Status.SUBMITTED, Status.RESUBMITTED)
IN_PROGRESS = (Status.ACCEPTED, Status.REVIEWED)  # the clock runs: suspension and postponement apply
RATEABLE = (Status.DELIVERED, Status.REJECTED)
OUTCOMES = ("approved", "refused")


class InvalidTransition(Exception):
    """The action is not allowed in the case's current state (HTTP 409)."""

    def __init__(self, action: str, status: Status, message: str | None = None) -> None:
        label = ACTION_LABELS.get(action, action)
        super().__init__(message or f"cannot {action} a case that is {status.value}")
        self.action, self.status = action, status
        self.label = f"当前状态（{STATUS_LABELS[status]}）不能{label}"


class InvalidCaseInput(ValueError):
    """A reason, list or number the action needs is missing or malformed (HTTP 400)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field, self.message = field, message


@dataclass(frozen=True)
class Event:
    """One recorded step: who did what, when, why, and the state it moved the case between."""

    action: str
    actor: str
    at: datetime
    from_status: Status
    to_status: Status
    reason: str = ""
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Case:
    """The part of a case the life cycle decides on. `missing` are the required e-certificates the
    service could not attach; they join the correction notice and block acceptance."""

    status: Status
    limit_days: int  # committed limit in working days, from the catalogue at application time
    missing: tuple[str, ...] = ()
    corrections: tuple[str, ...] = ()
    accepted_on: date | None = None
    deadline: date | None = None
    suspended_on: date | None = None
    suspended_from: Status | None = None
    postponed_days: int = 0
    outcome: str | None = None
    rating: int | None = None

    # -- the application -------------------------------------------------------------------------------

    @classmethod
    def submit(
        cls, *, limit_days: int, missing: tuple[str, ...], actor: str, at: datetime
    ) -> tuple[Case, Event]:
        if not isinstance(limit_days, int) or limit_days < 1:
            raise InvalidCaseInput("limit_days", "the item's committed limit must be at least 1 working day")
        case = cls(Status.SUBMITTED, limit_days, missing=tuple(missing))
        details = {"missing": list(missing)} if missing else {}
        return case, Event("submit", actor, at, Status.SUBMITTED, Status.SUBMITTED, details=details)

    # -- pre-review (预审) ---------------------------------------------------------------------------------

    def request_corrections(self, items: Any, *, actor: str, at: datetime) -> tuple[Case, Event]:
        """One notice listing every item to correct: the officer's and every missing e-certificate."""
        self._require("request_corrections", PRE_REVIEW)
        if self.corrections:
            raise InvalidTransition(
                "request_corrections",
                self.status,
                "corrections were already notified once; accept or reject the case",
            )
        listed = correction_list(items, required=not self.missing)
        every = tuple(dict.fromkeys(self.missing + listed))
        case = replace(self, status=Status.CORRECTIONS_REQUESTED, corrections=every)
        return case, self._event(case, "request_corrections", actor, at, details={"items": list(every)})

    def resubmit(
        self, *, missing: tuple[str, ...], actor: str, at: datetime, note: Any = ""
    ) -> tuple[Case, Event]:
        self._require("resubmit", (Status.CORRECTIONS_REQUESTED,))
        case = replace(self, status=Status.RESUBMITTED, missing=tuple(missing))
        details = {"still_missing": list(missing)} if missing else {}
        return case, self._event(case, "resubmit", actor, at, optional_text(note, "note"), details)

    def accept(self, *, actor: str, at: datetime, reason: Any = "") -> tuple[Case, Event]:
        """Acceptance (受理) starts the clock: deadline = acceptance day + the committed working days."""
        self._require("accept", PRE_REVIEW)
        if self.missing:
            raise InvalidTransition(
                "accept", self.status, f"required materials are missing: {'; '.join(self.missing)}"
            )
        on = china_day(at)
        deadline = add_working_days(on, self.limit_days)
        case = replace(self, status=Status.ACCEPTED, accepted_on=on, deadline=deadline)
        details = {"deadline": deadline.isoformat()}
        return case, self._event(case, "accept", actor, at, optional_text(reason), details)

    def reject(self, reason: Any, *, actor: str, at: datetime) -> tuple[Case, Event]:
        self._require("reject", PRE_REVIEW)
        case = replace(self, status=Status.REJECTED)
        return case, self._event(case, "reject", actor, at, required_text(reason))

    # -- review and decision ---------------------------------------------------------------------------

    def review(self, *, actor: str, at: datetime, reason: Any = "") -> tuple[Case, Event]:
        self._require("review", (Status.ACCEPTED,))
        case = replace(self, status=Status.REVIEWED)
        return case, self._event(case, "review", actor, at, optional_text(reason))

    def decide(self, outcome: Any, reason: Any, *, actor: str, at: datetime) -> tuple[Case, Event]:
        """Approve or refuse; a refusal must say why (an approval may)."""
        self._require("decide", (Status.REVIEWED,))
        if outcome not in OUTCOMES:
            raise InvalidCaseInput("outcome", "approved or refused")
        text = required_text(reason) if outcome == "refused" else optional_text(reason)
        case = replace(self, status=Status.DECIDED, outcome=outcome)
        return case, self._event(case, "decide", actor, at, text, {"outcome": outcome})

    def deliver(self, *, actor: str, at: datetime, reason: Any = "") -> tuple[Case, Event]:
        self._require("deliver", (Status.DECIDED,))
        case = replace(self, status=Status.DELIVERED)
        return case, self._event(case, "deliver", actor, at, optional_text(reason))

    # -- the clock: suspension and postponement --------------------------------------------------------

    def suspend(self, reason: Any, *, actor: str, at: datetime) -> tuple[Case, Event]:
        self._require("suspend", IN_PROGRESS)
        case = replace(self, status=Status.SUSPENDED, suspended_on=china_day(at), suspended_from=self.status)
        return case, self._event(case, "suspend", actor, at, required_text(reason))

    def resume(self, reason: Any, *, actor: str, at: datetime) -> tuple[Case, Event]:
        """The deadline moves by the working days the case stood still."""
        self._require("resume", (Status.SUSPENDED,))
        assert self.suspended_on and self.suspended_from and self.deadline  # set together by suspend
        text = required_text(reason)
        stopped = working_days_between(self.suspended_on, china_day(at))
        deadline = add_working_days(self.deadline, stopped)
        case = replace(
            self, status=self.suspended_from, suspended_on=None, suspended_from=None, deadline=deadline
        )
        details = {"suspended_working_days": stopped, "deadline": deadline.isoformat()}
        return case, self._event(case, "resume", actor, at, text, details)

    def postpone(self, days: Any, reason: Any, *, actor: str, at: datetime) -> tuple[Case, Event]:
        """At most once, before the decision, by 1 to MAX_POSTPONE_DAYS working days."""
        self._require("postpone", IN_PROGRESS)
        if self.postponed_days:
            raise InvalidTransition("postpone", self.status, "the case was already postponed once")
        if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_POSTPONE_DAYS:
            raise InvalidCaseInput("days", f"a whole number of working days, 1 to {MAX_POSTPONE_DAYS}")
        text = required_text(reason)
        assert self.deadline  # set by accept
        deadline = add_working_days(self.deadline, days)
        case = replace(self, postponed_days=days, deadline=deadline)
        details = {"days": days, "deadline": deadline.isoformat()}
        return case, self._event(case, "postpone", actor, at, text, details)

    # -- the applicant's evaluation (好差评) -----------------------------------------------------------------

    def rate(self, score: Any, *, actor: str, at: datetime, comment: Any = "") -> tuple[Case, Event]:
        self._require("rate", RATEABLE)
        if self.rating is not None:
            raise InvalidTransition("rate", self.status, "the case was already rated")
        if isinstance(score, bool) or not isinstance(score, int) or not 1 <= score <= 5:
            raise InvalidCaseInput("score", "a whole number from 1 to 5")
        case = replace(self, rating=score)
        return case, self._event(case, "rate", actor, at, optional_text(comment, "comment"), {"score": score})

    @property
    def may_rate(self) -> bool:
        return self.status in RATEABLE and self.rating is None

    # -- shared ----------------------------------------------------------------------------------------

    def _require(self, action: str, allowed: tuple[Status, ...]) -> None:
        if self.status not in allowed:
            raise InvalidTransition(action, self.status)

    def _event(
        self,
        case: Case,
        action: str,
        actor: str,
        at: datetime,
        reason: str = "",
        details: dict[str, Any] | None = None,
    ) -> Event:
        return Event(action, actor, at, self.status, case.status, reason, details or {})


def china_day(at: datetime) -> date:
    if at.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return at.astimezone(CHINA).date()


def required_text(value: Any, name: str = "reason") -> str:
    text = optional_text(value, name)
    if not text:
        raise InvalidCaseInput(name, "a reason is required for this action")
    return text


def optional_text(value: Any, name: str = "reason", limit: int = MAX_REASON) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidCaseInput(name, "must be a string")
    text = value.strip()
    if len(text) > limit:
        raise InvalidCaseInput(name, f"at most {limit} characters")
    if any((ord(ch) < 32 and ch not in "\n\t") or ord(ch) == 127 for ch in text):
        raise InvalidCaseInput(name, "contains control characters")
    return text


def correction_list(value: Any, *, required: bool) -> tuple[str, ...]:
    """The officer's items: a list of distinct non-empty strings (may be empty when e-certificates are
    missing, since those are listed anyway)."""
    if value is None:
        value = []
    if not isinstance(value, list) or len(value) > MAX_CORRECTIONS:
        raise InvalidCaseInput("items", f"a list of at most {MAX_CORRECTIONS} items to correct")
    items: list[str] = []
    for item in value:
        if not isinstance(item, str) or not item.strip():
            raise InvalidCaseInput("items", "each item is a non-empty string")
        items.append(optional_text(item, "items", MAX_CORRECTION))
    if required and not items:
        raise InvalidCaseInput("items", "list every item to correct, all at once")
    return tuple(dict.fromkeys(items))
