"""The ticket's states and the transition table, in plain Python.

Services consult this table and nothing else to decide whether a transition may happen; the API has no
way to write `status` directly. A transition may lead to different states depending on where it starts
(return from `dispatched` or `accepted` both lead back to `pending_dispatch`), so the table maps each
transition to {from state: to state}.
"""

from enum import StrEnum

from django.db import models
from django.utils.translation import gettext_lazy as _


class Status(models.TextChoices):
    DRAFT = "draft", _("受理中")
    PENDING_DISPATCH = "pending_dispatch", _("待派单")
    # The department asked to return the ticket; the centre reviews the return.
    RETURN_PENDING = "return_pending", _("退单待审核")
    DISPATCHED = "dispatched", _("已派单")
    ACCEPTED = "accepted", _("已签收")
    # Waiting on the citizen (materials, an on-site appointment): the reply clock is stopped.
    SUSPENDED = "suspended", _("暂停计时")
    REPLIED = "replied", _("已答复")
    CALLBACK = "callback", _("待回访")
    CLOSED = "closed", _("已办结")
    MERGED = "merged", _("已并单")
    TRANSFERRED = "transferred", _("已转外部")
    CANCELLED = "cancelled", _("已撤销")


class Transition(models.TextChoices):
    SUBMIT = "submit", _("提交待派")
    INSTANT_REPLY = "instant_reply", _("即时答复")
    DISPATCH = "dispatch", _("派单")
    ACCEPT = "accept", _("签收")
    RETURN = "return", _("退单")
    APPROVE_RETURN = "approve_return", _("同意退单")
    REJECT_RETURN = "reject_return", _("驳回退单")
    REASSIGN = "reassign", _("改派")
    REQUEST_EXTENSION = "request_extension", _("申请延期")
    APPROVE_EXTENSION = "approve_extension", _("批准延期")
    REJECT_EXTENSION = "reject_extension", _("驳回延期")
    SUSPEND = "suspend", _("暂停计时")
    RESUME = "resume", _("恢复计时")
    REPLY = "reply", _("答复")
    APPROVE_REPLY = "approve_reply", _("答复审核通过")
    REJECT_REPLY = "reject_reply", _("答复退回重办")
    CLOSE = "close", _("回访办结")
    REOPEN = "reopen", _("不满意重办")
    MERGE = "merge", _("并单")
    TRANSFER = "transfer", _("转外部")
    CANCEL = "cancel", _("撤销")


class Side(StrEnum):
    """Who may perform a transition, before visibility is checked."""

    # agents, dispatchers, supervisors, administrators (the hotline centre taking calls)
    INTAKE = "intake"
    # dispatchers, supervisors, administrators
    DISPATCH = "dispatch"
    # members of the ticket's lead department (department leads also from an ancestor department)
    DEPARTMENT = "department"
    # supervisors and administrators
    SUPERVISION = "supervision"


S = Status
T = Transition

TABLE: dict[Transition, dict[Status, Status]] = {
    T.SUBMIT: {S.DRAFT: S.PENDING_DISPATCH},
    T.INSTANT_REPLY: {S.DRAFT: S.CLOSED, S.PENDING_DISPATCH: S.CLOSED},
    T.DISPATCH: {S.PENDING_DISPATCH: S.DISPATCHED},
    T.ACCEPT: {S.DISPATCHED: S.ACCEPTED},
    T.RETURN: {S.DISPATCHED: S.RETURN_PENDING, S.ACCEPTED: S.RETURN_PENDING},
    T.APPROVE_RETURN: {S.RETURN_PENDING: S.PENDING_DISPATCH},
    # A refused return means the department keeps the matter: it counts as accepted.
    T.REJECT_RETURN: {S.RETURN_PENDING: S.ACCEPTED},
    T.REASSIGN: {
        S.DISPATCHED: S.DISPATCHED,
        S.ACCEPTED: S.DISPATCHED,
        S.SUSPENDED: S.DISPATCHED,
        S.RETURN_PENDING: S.DISPATCHED,
    },
    T.REQUEST_EXTENSION: {S.ACCEPTED: S.ACCEPTED},
    T.APPROVE_EXTENSION: {S.ACCEPTED: S.ACCEPTED},
    T.REJECT_EXTENSION: {S.ACCEPTED: S.ACCEPTED},
    T.SUSPEND: {S.ACCEPTED: S.SUSPENDED},
    T.RESUME: {S.SUSPENDED: S.ACCEPTED},
    T.REPLY: {S.ACCEPTED: S.REPLIED},
    T.APPROVE_REPLY: {S.REPLIED: S.CALLBACK},
    T.REJECT_REPLY: {S.REPLIED: S.ACCEPTED},
    T.CLOSE: {S.CALLBACK: S.CLOSED},
    T.REOPEN: {S.CALLBACK: S.DISPATCHED},
    T.MERGE: {
        S.DRAFT: S.MERGED,
        S.PENDING_DISPATCH: S.MERGED,
        S.DISPATCHED: S.MERGED,
        S.ACCEPTED: S.MERGED,
        S.RETURN_PENDING: S.MERGED,
    },
    T.TRANSFER: {S.DRAFT: S.TRANSFERRED, S.PENDING_DISPATCH: S.TRANSFERRED},
    T.CANCEL: {S.DRAFT: S.CANCELLED, S.PENDING_DISPATCH: S.CANCELLED},
}

SIDES: dict[Transition, Side] = {
    T.SUBMIT: Side.INTAKE,
    T.INSTANT_REPLY: Side.INTAKE,
    # The agent on the call dispatches (first-level dispatch); dispatchers handle the queue.
    T.DISPATCH: Side.INTAKE,
    T.ACCEPT: Side.DEPARTMENT,
    T.RETURN: Side.DEPARTMENT,
    T.APPROVE_RETURN: Side.DISPATCH,
    T.REJECT_RETURN: Side.DISPATCH,
    T.REASSIGN: Side.DISPATCH,
    T.REQUEST_EXTENSION: Side.DEPARTMENT,
    T.APPROVE_EXTENSION: Side.SUPERVISION,
    T.REJECT_EXTENSION: Side.SUPERVISION,
    T.SUSPEND: Side.DEPARTMENT,
    T.RESUME: Side.DEPARTMENT,
    T.REPLY: Side.DEPARTMENT,
    T.APPROVE_REPLY: Side.DISPATCH,
    T.REJECT_REPLY: Side.DISPATCH,
    T.CLOSE: Side.INTAKE,
    T.REOPEN: Side.INTAKE,
    T.MERGE: Side.INTAKE,
    T.TRANSFER: Side.INTAKE,
    T.CANCEL: Side.INTAKE,
}

TERMINAL: frozenset[Status] = frozenset({S.CLOSED, S.MERGED, S.TRANSFERRED, S.CANCELLED})

# States in which a department holds the ticket and its deadlines run.
WITH_DEPARTMENT: frozenset[Status] = frozenset({S.DISPATCHED, S.ACCEPTED})

# States in which the department holds the ticket but the clock is stopped (the citizen is waited on).
PAUSED: frozenset[Status] = frozenset({S.SUSPENDED})

assert set(TABLE) == set(Transition) == set(SIDES), "every transition needs a row and a side"


def target(transition: Transition, current: Status) -> Status | None:
    """The state `transition` leads to from `current`, or None when the table does not allow it."""
    return TABLE[transition].get(current)


def allowed_from(current: Status) -> list[Transition]:
    return [t for t in Transition if current in TABLE[t]]
