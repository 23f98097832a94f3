"""Writes on tickets: one service per user intent.

Every transition follows the same steps: lock the row, check visibility, the actor's side and the
transition table, change the fields, save with `update_fields`, write an append-only ticket event, and
broadcast after commit. API views, the admin, telephony handlers and management commands all call these.
"""

import hashlib
import json
import logging
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.db.models import F

from hotline import clock
from hotline.errors import (
    ApplicationError,
    IdempotencyMismatch,
    InvalidTransition,
    NotFound,
    NotPermitted,
)
from hotline.realtime import groups
from hotline.realtime.broadcast import broadcast_on_commit

from . import deadlines as deadline_rules
from . import rollups
from .calendar import TZ
from .models import (
    EVENT_ASSISTING_REPLY,
    EVENT_ATTACHMENT,
    EVENT_CONTACT_VIEWED,
    EVENT_CREATED,
    EVENT_DEADLINE,
    EVENT_HANDED_TO_UNIT,
    EVENT_MERGED_IN,
    EVENT_NOTE,
    EVENT_UPDATED,
    AssistingReply,
    Category,
    Channel,
    Department,
    ExtensionRequest,
    ExtensionStatus,
    ExternalTarget,
    IdempotencyKey,
    Region,
    ReplyResult,
    Role,
    Satisfaction,
    SupervisionOrder,
    SupervisionStatus,
    Ticket,
    TicketAttachment,
    TicketEvent,
    TicketEventDepartment,
    TicketNumberSequence,
    Urgency,
    User,
)
from .realtime import department_names_for, public_event, staff_event, staff_groups
from .selectors import (
    acts_for_lead_department,
    lead_department_unit_ids,
    sees_everything,
    ticket_visible_to,
    user_actionable_department_ids,
    working_calendar,
)
from .workflow import SIDES, Side, Status, Transition, target
from .workflow import TERMINAL as TERMINAL_STATES

logger = logging.getLogger(__name__)

INTAKE_ROLES = frozenset({Role.AGENT, Role.DISPATCHER, Role.SUPERVISOR, Role.ADMINISTRATOR})
DISPATCH_ROLES = frozenset({Role.DISPATCHER, Role.SUPERVISOR, Role.ADMINISTRATOR})
SUPERVISION_ROLES = frozenset({Role.SUPERVISOR, Role.ADMINISTRATOR})
EDITABLE_STATES = frozenset({Status.DRAFT, Status.PENDING_DISPATCH})


@dataclass(frozen=True)
class TicketInput:
    """What intake records about a request (the ticket form)."""

    hotline_line: str
    channel: str
    appeal_type: str
    title: str
    content: str
    urgency: str = "normal"
    category_id: int | None = None
    region_id: int | None = None
    location_text: str = ""
    caller_name: str = ""
    caller_phone: str = ""
    caller_id_number: str = ""
    caller_confidential: bool = False
    duplicate_of_id: int | None = None
    reopened_from_id: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


# Fields of a draft or pending ticket that intake may still correct.
UPDATABLE_FIELDS = frozenset(
    {
        "appeal_type",
        "title",
        "content",
        "urgency",
        "category_id",
        "region_id",
        "location_text",
        "caller_name",
        "caller_phone",
        "caller_id_number",
        "caller_confidential",
        "duplicate_of_id",
    }
)


# ---------------------------------------------------------------------------------------------------------
# shared steps


def _may_act(actor: User, side: Side, ticket: Ticket) -> bool:
    if not actor.is_authenticated or not actor.is_active:
        return False
    if side is Side.DEPARTMENT:
        return acts_for_lead_department(user=actor, ticket=ticket)
    if actor.is_superuser:
        return True
    allowed = {Side.INTAKE: INTAKE_ROLES, Side.DISPATCH: DISPATCH_ROLES, Side.SUPERVISION: SUPERVISION_ROLES}[side]
    return actor.role in allowed


def _require_intake_role(actor: User) -> None:
    if not (actor.is_authenticated and actor.is_active and (actor.is_superuser or actor.role in INTAKE_ROLES)):
        raise NotPermitted("只有热线中心人员可以受理工单。")


def _lock_visible(*, ticket_id: int, actor: User) -> Ticket:
    try:
        ticket = Ticket.objects.select_for_update().get(pk=ticket_id)
    except Ticket.DoesNotExist:
        raise NotFound("工单不存在，或您无权查看。") from None
    if not ticket_visible_to(user=actor).filter(pk=ticket_id).exists():
        raise NotFound("工单不存在，或您无权查看。")
    return ticket


def _begin(*, ticket_id: int, transition: Transition, actor: User | None) -> tuple[Ticket, Status]:
    if actor is None:
        # The system (the citizen's own rating, the automated callback): its caller established the right.
        ticket = Ticket.objects.select_for_update().filter(pk=ticket_id).first()
        if ticket is None:
            raise NotFound("工单不存在。")
    else:
        ticket = _lock_visible(ticket_id=ticket_id, actor=actor)
    if actor is not None and not _may_act(actor, SIDES[transition], ticket):
        raise NotPermitted(
            f"您的角色或所属单位不能对该工单执行「{transition.label}」。",
            extra={"transition": transition.value},
        )
    to_status = target(transition, Status(ticket.status))
    if to_status is None:
        raise InvalidTransition(
            f"工单当前状态为「{Status(ticket.status).label}」，不能执行「{transition.label}」。",
            extra={"transition": transition.value, "status": ticket.status},
        )
    return ticket, to_status


def _record(
    *,
    ticket: Ticket,
    kind: str,
    actor: User | None,
    from_status: str,
    to_status: str,
    data: dict[str, Any] | None = None,
    extra_departments: Iterable[int] = (),
) -> TicketEvent:
    event = TicketEvent.objects.create(
        ticket=ticket,
        kind=kind,
        actor=actor if actor is not None and actor.is_authenticated else None,
        from_status=from_status,
        to_status=to_status,
        data=data or {},
        created_at=clock.now(),
    )
    department_ids = set(extra_departments)
    if ticket.lead_department_id:
        department_ids.add(ticket.lead_department_id)
    if ticket.handling_unit_id:
        department_ids.add(ticket.handling_unit_id)
    department_ids.update(ticket.assisting_departments.values_list("id", flat=True))
    TicketEventDepartment.objects.bulk_create(
        TicketEventDepartment(event=event, department_id=d) for d in sorted(department_ids)
    )
    rollups.count_event(event=event, ticket=ticket)
    broadcast_on_commit(staff_event(event, ticket), *staff_groups(ticket, department_ids))
    public = public_event(event, ticket, department_names_for([event]))
    if public is not None:
        broadcast_on_commit(public, groups.public_ticket(ticket.id))
    return event


def _finish(
    *,
    ticket: Ticket,
    transition: Transition,
    to_status: Status,
    actor: User | None,
    fields: Sequence[str] = (),
    data: dict[str, Any] | None = None,
    extra_departments: Iterable[int] = (),
) -> Ticket:
    from_status = ticket.status
    ticket.status = to_status
    ticket.updated_at = clock.now()
    ticket.save(update_fields=[*dict.fromkeys([*fields, "status", "updated_at"])])
    _record(
        ticket=ticket,
        kind=transition.value,
        actor=actor,
        from_status=from_status,
        to_status=to_status,
        # The lead department after the transition, so a replayed event says what the live one said.
        data={"lead_department": ticket.lead_department_id, **(data or {})},
        extra_departments=extra_departments,
    )
    return ticket


def _require_text(value: str, *, field_name: str, message: str) -> str:
    value = (value or "").strip()
    if not value:
        raise ApplicationError(message, code="required", extra={"field": field_name})
    return value


def _dispatch_targets(
    *, lead_department_id: int, assisting_department_ids: Iterable[int]
) -> tuple[Department, list[Department]]:
    assisting_ids = sorted(set(assisting_department_ids))
    if lead_department_id in assisting_ids:
        raise ApplicationError("主办单位不能同时作为协办单位。", code="lead_also_assisting")
    wanted = {lead_department_id, *assisting_ids}
    departments = {d.id: d for d in Department.objects.filter(id__in=wanted, is_active=True, accepts_dispatch=True)}
    missing = sorted(wanted - set(departments))
    if missing:
        raise ApplicationError(
            "所选单位不存在、已停用或不接收派单。", code="invalid_department", extra={"department_ids": missing}
        )
    return departments[lead_department_id], [departments[i] for i in assisting_ids]


def _apply_deadlines(ticket: Ticket) -> list[str]:
    """Set the deadlines for a ticket handed to a department now; returns the fields changed."""
    category = ticket.category if ticket.category_id else None
    policy = deadline_rules.policy_for(appeal_type=ticket.appeal_type, urgency=ticket.urgency, category=category)
    if policy is None:
        raise ApplicationError("没有适用的办理时限规则，请先在管理后台配置。", code="no_deadline_policy")
    now = clock.now()
    due = deadline_rules.deadlines_from(policy=policy, start=now, calendar=working_calendar())
    ticket.deadline_policy = policy
    ticket.dispatched_at = now
    ticket.accept_due_at = due.accept_due_at
    ticket.accept_warning_at = due.accept_warning_at
    ticket.return_due_at = due.return_due_at
    ticket.reply_due_at = due.reply_due_at
    ticket.reply_warning_at = due.reply_warning_at
    return [
        "deadline_policy",
        "dispatched_at",
        "accept_due_at",
        "accept_warning_at",
        "return_due_at",
        "reply_due_at",
        "reply_warning_at",
    ]


def _deadline_data(ticket: Ticket) -> dict[str, Any]:
    return {
        "policy": ticket.deadline_policy_id,
        "accept_due_at": ticket.accept_due_at.isoformat() if ticket.accept_due_at else None,
        "return_due_at": ticket.return_due_at.isoformat() if ticket.return_due_at else None,
        "reply_due_at": ticket.reply_due_at.isoformat() if ticket.reply_due_at else None,
    }


_CLEARED_DEADLINES = {
    "deadline_policy": None,
    "dispatched_at": None,
    "accept_due_at": None,
    "accept_warning_at": None,
    "return_due_at": None,
    "reply_due_at": None,
    "reply_warning_at": None,
    "accepted_at": None,
    "paused_at": None,
    "handling_unit": None,
}


# ---------------------------------------------------------------------------------------------------------
# intake


def _next_number(*, hotline_line: str) -> str:
    """`{line}-{yyyymmdd}-{nnnnnn}`: unique per line and day; the row update serializes concurrent creates."""
    day = clock.now().astimezone(TZ).date()
    sequence = TicketNumberSequence.objects.filter(hotline_line=hotline_line, day=day)
    for _attempt in range(5):
        if sequence.update(last_value=F("last_value") + 1):
            value = sequence.values_list("last_value", flat=True).get()
            return f"{hotline_line}-{day:%Y%m%d}-{value:06d}"
        try:
            with transaction.atomic():
                TicketNumberSequence.objects.create(hotline_line=hotline_line, day=day, last_value=1)
            return f"{hotline_line}-{day:%Y%m%d}-{1:06d}"
        except IntegrityError:
            # Another create made today's row first; take the next number from it.
            continue
    raise ApplicationError("暂时无法生成工单编号，请重试。", code="number_unavailable")


def _validate_references(*, actor: User | None, ids: dict[str, int | None]) -> dict[str, Any]:
    """Check the referenced rows named in `ids` (category_id, region_id, duplicate_of_id, reopened_from_id);
    returns the category and region found."""
    found: dict[str, Any] = {}
    category_id, region_id = ids.get("category_id"), ids.get("region_id")
    if category_id is not None:
        category = Category.objects.filter(pk=category_id, is_active=True).first()
        if category is None:
            raise ApplicationError("诉求分类不存在或已停用。", code="invalid_category", extra={"field": "category"})
        found["category"] = category
    if region_id is not None:
        region = Region.objects.filter(pk=region_id).first()
        if region is None:
            raise ApplicationError("所属区域不存在。", code="invalid_region", extra={"field": "region"})
        found["region"] = region
    for name in ("duplicate_of_id", "reopened_from_id"):
        linked_id = ids.get(name)
        if linked_id is None:
            continue
        if actor is None or not ticket_visible_to(user=actor).filter(pk=linked_id).exists():
            raise ApplicationError("关联的工单不存在或无权查看。", code="invalid_link", extra={"field": name[:-3]})
    return found


@transaction.atomic
def ticket_create(*, data: TicketInput, actor: User, draft: bool = False) -> Ticket:
    """Intake: a draft while the call goes on, or straight to the dispatch queue."""
    _require_intake_role(actor)
    references = _validate_references(
        actor=actor,
        ids={
            "category_id": data.category_id,
            "region_id": data.region_id,
            "duplicate_of_id": data.duplicate_of_id,
            "reopened_from_id": data.reopened_from_id,
        },
    )
    return _create(data=data, references=references, actor=actor, draft=draft)


# Channels through which citizens file requests themselves, without an agent.
PUBLIC_CHANNELS = frozenset({Channel.WEB, Channel.OPEN311, Channel.APP, Channel.WECHAT})


PUBLIC_PHOTO_TYPES = frozenset({"image/jpeg", "image/png", "image/webp"})
PUBLIC_MAX_PHOTOS = 3


@dataclass(frozen=True)
class Upload:
    name: str
    # Sniffed from the bytes by the caller, never the client's claim.
    content_type: str
    data: bytes


@transaction.atomic
def ticket_create_public(*, data: TicketInput, photos: Sequence[Upload] = ()) -> Ticket:
    """A request filed by the citizen (public site, Open311, apps): straight to the dispatch queue, with no
    staff member as its author. The caller of this service has done the anti-abuse checks; only what a citizen
    may set is taken (no urgency above normal, no links to other tickets)."""
    if data.channel not in PUBLIC_CHANNELS:
        raise ApplicationError("该渠道不能由群众直接提交。", code="invalid_channel", extra={"field": "channel"})
    if data.urgency != Urgency.NORMAL or data.duplicate_of_id or data.reopened_from_id or data.caller_confidential:
        raise ApplicationError("群众提交的诉求不能设置这些项目。", code="not_public_field")
    for name, value, limit in (("title", data.title, 200), ("content", data.content, 5000)):
        if not value.strip():
            raise ApplicationError("请填写标题和诉求内容。", code="required", extra={"field": name})
        if len(value) > limit:
            raise ApplicationError(f"不能超过 {limit} 个字。", code="too_long", extra={"field": name})
    if len(photos) > PUBLIC_MAX_PHOTOS:
        raise ApplicationError(
            f"最多上传 {PUBLIC_MAX_PHOTOS} 张照片。", code="too_many_files", extra={"field": "photos"}
        )
    for photo in photos:
        _check_file(content_type=photo.content_type, data=photo.data, types=PUBLIC_PHOTO_TYPES)
    references = _validate_references(actor=None, ids={"category_id": data.category_id, "region_id": data.region_id})
    ticket = _create(data=data, references=references, actor=None, draft=False)
    for photo in photos:
        _store_attachment(
            ticket, actor=None, department_id=None, name=photo.name, content_type=photo.content_type, data=photo.data
        )
    return ticket


def _create(*, data: TicketInput, references: dict[str, Any], actor: User | None, draft: bool) -> Ticket:
    if data.hotline_line not in settings.HOTLINE_LINES:
        raise ApplicationError(
            f"热线号码 {data.hotline_line} 未开通。", code="unknown_hotline_line", extra={"field": "hotline_line"}
        )
    now = clock.now()
    status = Status.DRAFT if draft else Status.PENDING_DISPATCH
    ticket = Ticket.objects.create(
        number=_next_number(hotline_line=data.hotline_line),
        hotline_line=data.hotline_line,
        channel=data.channel,
        status=status,
        appeal_type=data.appeal_type,
        category=references.get("category"),
        urgency=data.urgency,
        title=data.title.strip(),
        content=data.content.strip(),
        location_text=data.location_text.strip(),
        region=references.get("region"),
        caller_name=data.caller_name.strip(),
        caller_phone=data.caller_phone.strip(),
        caller_id_number=data.caller_id_number.strip().upper(),
        caller_confidential=data.caller_confidential,
        duplicate_of_id=data.duplicate_of_id,
        reopened_from_id=data.reopened_from_id,
        query_code=f"{secrets.randbelow(10**6):06d}",
        created_by=actor,
        created_at=now,
        updated_at=now,
    )
    _record(
        ticket=ticket,
        kind=EVENT_CREATED,
        actor=actor,
        from_status="",
        to_status=status,
        # What the screens show of a new ticket, as it was taken in (later corrections are their own events).
        data={
            "channel": ticket.channel,
            "hotline_line": ticket.hotline_line,
            "draft": draft,
            "appeal_type": ticket.appeal_type,
            "urgency": ticket.urgency,
            "title": ticket.title,
            **data.extra,
        },
    )
    logger.info(
        "ticket %s created by %s via %s", ticket.number, f"user {actor.pk}" if actor else "the public", data.channel
    )
    return ticket


def _fingerprint(data: TicketInput, draft: bool) -> str:
    payload = json.dumps({"data": asdict(data), "draft": draft}, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


def _replay(*, key: str, actor: User, fingerprint: str) -> Ticket | None:
    record = IdempotencyKey.objects.select_related("ticket").filter(actor=actor, key=key).first()
    if record is None or record.ticket is None:
        return None
    if record.fingerprint != fingerprint:
        raise IdempotencyMismatch("该 Idempotency-Key 已用于内容不同的请求，请换一个新的键。")
    return record.ticket


def ticket_create_idempotent(
    *, idempotency_key: str, data: TicketInput, actor: User, draft: bool = False
) -> tuple[Ticket, bool]:
    """Create once per (actor, key): a retry, even a concurrent one, returns the first ticket.

    Returns the ticket and whether this call created it.
    """
    fingerprint = _fingerprint(data, draft)
    ttl = timedelta(hours=settings.HOTLINE_IDEMPOTENCY_TTL_HOURS)
    IdempotencyKey.objects.filter(actor=actor, key=idempotency_key, created_at__lt=clock.now() - ttl).delete()
    replayed = _replay(key=idempotency_key, actor=actor, fingerprint=fingerprint)
    if replayed is not None:
        return replayed, False
    try:
        with transaction.atomic():
            # The unique (actor, key) row is written first: a concurrent duplicate waits on it, then fails.
            record = IdempotencyKey.objects.create(
                key=idempotency_key, actor=actor, fingerprint=fingerprint, created_at=clock.now()
            )
            ticket = ticket_create(data=data, actor=actor, draft=draft)
            record.ticket = ticket
            record.save(update_fields=["ticket"])
    except IntegrityError:
        replayed = _replay(key=idempotency_key, actor=actor, fingerprint=fingerprint)
        if replayed is None:
            raise
        return replayed, False
    return ticket, True


@transaction.atomic
def ticket_update(*, ticket_id: int, actor: User, changes: dict[str, Any]) -> Ticket:
    """Correct the ticket form while the ticket is still a draft or waits for dispatch."""
    _require_intake_role(actor)
    ticket = _lock_visible(ticket_id=ticket_id, actor=actor)
    if ticket.status not in EDITABLE_STATES:
        raise InvalidTransition(
            f"工单当前状态为「{Status(ticket.status).label}」，不能再修改受理内容。",
            code="not_editable",
            extra={"status": ticket.status},
        )
    unknown = sorted(set(changes) - UPDATABLE_FIELDS)
    if unknown:
        raise ApplicationError("这些字段不能修改。", code="not_updatable", extra={"fields": unknown})
    # Only what changes is checked: a category retired since intake does not block other corrections.
    _validate_references(actor=actor, ids={name: changes[name] for name in changes if name.endswith("_id")})
    if changes.get("duplicate_of_id") == ticket.id:
        raise ApplicationError("工单不能标记为自身的重复件。", code="invalid_link", extra={"field": "duplicate_of"})
    changed = []
    for name, value in changes.items():
        if isinstance(value, str):
            value = value.strip()
        if name == "caller_id_number":
            value = value.upper()
        if getattr(ticket, name) != value:
            setattr(ticket, name, value)
            changed.append(name)
    if not changed:
        return ticket
    ticket.updated_at = clock.now()
    ticket.save(update_fields=[*changed, "updated_at"])
    # Field names only: values may be personal data.
    _record(
        ticket=ticket,
        kind=EVENT_UPDATED,
        actor=actor,
        from_status=ticket.status,
        to_status=ticket.status,
        data={"fields": sorted(name.removesuffix("_id") for name in changed)},
    )
    return ticket


@transaction.atomic
def ticket_contact_reveal(*, ticket_id: int, actor: User) -> dict[str, str]:
    """The caller's contact in full, for a callback or a handler's call; each look is on the trail."""
    ticket = _lock_visible(ticket_id=ticket_id, actor=actor)
    if ticket.caller_confidential and not (sees_everything(actor) or actor.role in INTAKE_ROLES):
        raise NotPermitted("来电人要求保密，承办单位不能查看其联系方式。", code="confidential")
    _record(
        ticket=ticket,
        kind=EVENT_CONTACT_VIEWED,
        actor=actor,
        from_status=ticket.status,
        to_status=ticket.status,
        data={},
    )
    return {
        "caller_name": ticket.caller_name,
        "caller_phone": ticket.caller_phone,
        "caller_id_number": ticket.caller_id_number,
    }


# ---------------------------------------------------------------------------------------------------------
# transitions


@transaction.atomic
def ticket_submit(*, ticket_id: int, actor: User) -> Ticket:
    ticket, to_status = _begin(ticket_id=ticket_id, transition=Transition.SUBMIT, actor=actor)
    return _finish(ticket=ticket, transition=Transition.SUBMIT, to_status=to_status, actor=actor)


@transaction.atomic
def ticket_instant_reply(*, ticket_id: int, actor: User, reply_text: str) -> Ticket:
    ticket, to_status = _begin(ticket_id=ticket_id, transition=Transition.INSTANT_REPLY, actor=actor)
    ticket.reply_text = _require_text(reply_text, field_name="reply_text", message="请填写答复内容。")
    ticket.reply_result = ReplyResult.EXPLAINED if ticket.appeal_type == "inquiry" else ReplyResult.SOLVED
    ticket.replied_at = ticket.closed_at = clock.now()
    return _finish(
        ticket=ticket,
        transition=Transition.INSTANT_REPLY,
        to_status=to_status,
        actor=actor,
        fields=["reply_text", "reply_result", "replied_at", "closed_at"],
        data={"reply_text": ticket.reply_text, "result": ticket.reply_result},
    )


def _assign(
    *, ticket: Ticket, lead_department_id: int, assisting_department_ids: Iterable[int]
) -> tuple[list[str], dict[str, Any]]:
    lead, assisting = _dispatch_targets(
        lead_department_id=lead_department_id, assisting_department_ids=assisting_department_ids
    )
    ticket.lead_department = lead
    fields = ["lead_department", *_apply_deadlines(ticket)]
    ticket.assisting_departments.set(assisting)
    data = {
        "lead_department": lead.id,
        "assisting_departments": [d.id for d in assisting],
        **_deadline_data(ticket),
    }
    return fields, data


@transaction.atomic
def ticket_dispatch(
    *,
    ticket_id: int,
    actor: User,
    lead_department_id: int,
    assisting_department_ids: Iterable[int] = (),
    note: str = "",
) -> Ticket:
    ticket, to_status = _begin(ticket_id=ticket_id, transition=Transition.DISPATCH, actor=actor)
    fields, data = _assign(
        ticket=ticket, lead_department_id=lead_department_id, assisting_department_ids=assisting_department_ids
    )
    return _finish(
        ticket=ticket,
        transition=Transition.DISPATCH,
        to_status=to_status,
        actor=actor,
        fields=fields,
        data={**data, "note": note.strip()},
    )


@transaction.atomic
def ticket_accept(*, ticket_id: int, actor: User) -> Ticket:
    ticket, to_status = _begin(ticket_id=ticket_id, transition=Transition.ACCEPT, actor=actor)
    ticket.accepted_at = clock.now()
    late = bool(ticket.accept_due_at and ticket.accepted_at > ticket.accept_due_at)
    return _finish(
        ticket=ticket,
        transition=Transition.ACCEPT,
        to_status=to_status,
        actor=actor,
        fields=["accepted_at"],
        data={"department": ticket.lead_department_id, "late": late},
    )


@transaction.atomic
def ticket_return(*, ticket_id: int, actor: User, reason: str) -> Ticket:
    """The department asks to return the ticket ("not ours"); the centre reviews the return. Until it does,
    the department still holds the ticket and its reply clock runs."""
    ticket, to_status = _begin(ticket_id=ticket_id, transition=Transition.RETURN, actor=actor)
    reason = _require_text(reason, field_name="reason", message="退单必须说明理由。")
    if ticket.return_due_at and clock.now() > ticket.return_due_at:
        raise ApplicationError(
            "已超过允许退单的时限，请申请改派或延期。",
            code="return_window_closed",
            extra={"return_due_at": ticket.return_due_at.isoformat()},
        )
    lapsed = _lapse_pending_extension(ticket, actor=actor, note="工单已申请退单，延期申请自动失效。")
    ticket.return_count += 1
    return _finish(
        ticket=ticket,
        transition=Transition.RETURN,
        to_status=to_status,
        actor=actor,
        fields=["return_count"],
        data={"department": ticket.lead_department_id, "reason": reason, **_lapsed_data(lapsed)},
    )


def _return_request(ticket: Ticket) -> dict[str, Any]:
    event = ticket.events.filter(kind=Transition.RETURN).order_by("-id").first()
    return event.data if event is not None else {}


@transaction.atomic
def ticket_approve_return(*, ticket_id: int, actor: User, note: str = "") -> Ticket:
    """The centre agrees: the ticket leaves the department and waits for dispatch again."""
    ticket, to_status = _begin(ticket_id=ticket_id, transition=Transition.APPROVE_RETURN, actor=actor)
    previous = [ticket.lead_department_id, *ticket.assisting_departments.values_list("id", flat=True)]
    department_id = ticket.lead_department_id
    request = _return_request(ticket)
    ended = _end_supervision(ticket, actor=actor)
    for name, value in _CLEARED_DEADLINES.items():
        setattr(ticket, name, value)
    ticket.lead_department = None
    ticket.assisting_departments.clear()
    return _finish(
        ticket=ticket,
        transition=Transition.APPROVE_RETURN,
        to_status=to_status,
        actor=actor,
        fields=["lead_department", *_CLEARED_DEADLINES],
        data={
            "department": department_id,
            "reason": request.get("reason", ""),
            "note": note.strip(),
            **({"ended_orders": ended} if ended else {}),
        },
        extra_departments=[d for d in previous if d],
    )


@transaction.atomic
def ticket_reject_return(*, ticket_id: int, actor: User, reason: str) -> Ticket:
    """The centre refuses: the matter is the department's, which now holds it as accepted."""
    ticket, to_status = _begin(ticket_id=ticket_id, transition=Transition.REJECT_RETURN, actor=actor)
    reason = _require_text(reason, field_name="reason", message="驳回退单必须说明理由。")
    fields = []
    if ticket.accepted_at is None:
        ticket.accepted_at = clock.now()
        fields.append("accepted_at")
    return _finish(
        ticket=ticket,
        transition=Transition.REJECT_RETURN,
        to_status=to_status,
        actor=actor,
        fields=fields,
        data={"department": ticket.lead_department_id, "reason": reason},
    )


@transaction.atomic
def ticket_reassign(
    *,
    ticket_id: int,
    actor: User,
    lead_department_id: int,
    assisting_department_ids: Iterable[int] = (),
    reason: str,
) -> Ticket:
    ticket, to_status = _begin(ticket_id=ticket_id, transition=Transition.REASSIGN, actor=actor)
    reason = _require_text(reason, field_name="reason", message="改派必须说明理由。")
    previous = [ticket.lead_department_id, *ticket.assisting_departments.values_list("id", flat=True)]
    from_department = ticket.lead_department_id
    lapsed = _lapse_pending_extension(ticket, actor=actor, note="工单已改派，延期申请自动失效。")
    ended = _end_supervision(ticket, actor=actor)
    ticket.accepted_at = None
    ticket.paused_at = None
    ticket.handling_unit = None
    fields, data = _assign(
        ticket=ticket, lead_department_id=lead_department_id, assisting_department_ids=assisting_department_ids
    )
    return _finish(
        ticket=ticket,
        transition=Transition.REASSIGN,
        to_status=to_status,
        actor=actor,
        fields=[*fields, "accepted_at", "paused_at", "handling_unit"],
        data={
            **data,
            "from_department": from_department,
            "reason": reason,
            **_lapsed_data(lapsed),
            **({"ended_orders": ended} if ended else {}),
        },
        extra_departments=[d for d in previous if d],
    )


@transaction.atomic
def ticket_request_extension(*, ticket_id: int, actor: User, working_days: int, reason: str) -> Ticket:
    ticket, to_status = _begin(ticket_id=ticket_id, transition=Transition.REQUEST_EXTENSION, actor=actor)
    reason = _require_text(reason, field_name="reason", message="申请延期必须说明理由。")
    policy = ticket.deadline_policy
    max_extensions = policy.max_extensions if policy else 0
    max_days = policy.max_extension_working_days if policy else 0
    if ticket.extension_count >= max_extensions:
        raise ApplicationError(f"该工单最多可延期 {max_extensions} 次，已用完。", code="extension_limit_reached")
    if not 1 <= working_days <= max_days:
        raise ApplicationError(
            f"单次延期为 1 至 {max_days} 个工作日。", code="extension_too_long", extra={"field": "working_days"}
        )
    if ticket.extensions.filter(status=ExtensionStatus.PENDING).exists():
        raise ApplicationError("已有待审批的延期申请。", code="extension_pending")
    # The department side guarantees a lead department here.
    assert ticket.lead_department is not None
    request = ExtensionRequest.objects.create(
        ticket=ticket,
        department=ticket.lead_department,
        requested_by=actor,
        working_days=working_days,
        reason=reason,
        created_at=clock.now(),
    )
    return _finish(
        ticket=ticket,
        transition=Transition.REQUEST_EXTENSION,
        to_status=to_status,
        actor=actor,
        data={"extension": request.id, "working_days": working_days, "reason": reason},
    )


def _lapse_pending_extension(ticket: Ticket, *, actor: User, note: str) -> int | None:
    """A pending extension request belongs to the department that held the ticket; it ends with it."""
    request = ticket.extensions.select_for_update().filter(status=ExtensionStatus.PENDING).first()
    if request is None:
        return None
    _decide_extension(request, status=ExtensionStatus.REJECTED, actor=actor, note=note)
    return request.id


def _end_supervision(ticket: Ticket, *, actor: User) -> list[int]:
    """Supervision orders are addressed to the department that held the ticket; they end when it leaves.
    The transition's own event records which (`ended_orders`); the new department starts with a clean slate."""
    orders = list(
        SupervisionOrder.objects.select_for_update()
        .filter(ticket=ticket, status__in=[SupervisionStatus.OPEN, SupervisionStatus.ANSWERED])
        .values_list("id", flat=True)
    )
    if orders:
        SupervisionOrder.objects.filter(id__in=orders).update(
            status=SupervisionStatus.CLOSED, closed_by=actor, closed_at=clock.now()
        )
    return orders


def _lapsed_data(extension_id: int | None) -> dict[str, int]:
    return {"lapsed_extension": extension_id} if extension_id is not None else {}


def _pending_extension(ticket: Ticket) -> ExtensionRequest:
    request = ticket.extensions.select_for_update().filter(status=ExtensionStatus.PENDING).first()
    if request is None:
        raise ApplicationError("没有待审批的延期申请。", code="no_pending_extension")
    return request


def _decide_extension(request: ExtensionRequest, *, status: str, actor: User, note: str) -> None:
    request.status = status
    request.decided_by = actor
    request.decided_at = clock.now()
    request.decision_note = note.strip()
    request.save(update_fields=["status", "decided_by", "decided_at", "decision_note"])


@transaction.atomic
def ticket_approve_extension(*, ticket_id: int, actor: User, note: str = "") -> Ticket:
    ticket, to_status = _begin(ticket_id=ticket_id, transition=Transition.APPROVE_EXTENSION, actor=actor)
    request = _pending_extension(ticket)
    _decide_extension(request, status=ExtensionStatus.APPROVED, actor=actor, note=note)
    calendar = working_calendar()
    base = ticket.reply_due_at or clock.now()
    ticket.reply_due_at = calendar.add(base, request.working_days, "working_days")
    start = ticket.dispatched_at or clock.now()
    percent = ticket.deadline_policy.warning_percent if ticket.deadline_policy else 80
    unit = ticket.deadline_policy.reply_unit if ticket.deadline_policy else "working_days"
    ticket.reply_warning_at = deadline_rules.warning_at(
        start, ticket.reply_due_at, percent, calendar=calendar, unit=unit
    )
    ticket.extension_count += 1
    return _finish(
        ticket=ticket,
        transition=Transition.APPROVE_EXTENSION,
        to_status=to_status,
        actor=actor,
        fields=["reply_due_at", "reply_warning_at", "extension_count"],
        data={
            "extension": request.id,
            "working_days": request.working_days,
            "reply_due_at": ticket.reply_due_at.isoformat(),
            "note": request.decision_note,
        },
    )


@transaction.atomic
def ticket_reject_extension(*, ticket_id: int, actor: User, note: str) -> Ticket:
    ticket, to_status = _begin(ticket_id=ticket_id, transition=Transition.REJECT_EXTENSION, actor=actor)
    note = _require_text(note, field_name="note", message="驳回延期必须说明理由。")
    request = _pending_extension(ticket)
    _decide_extension(request, status=ExtensionStatus.REJECTED, actor=actor, note=note)
    return _finish(
        ticket=ticket,
        transition=Transition.REJECT_EXTENSION,
        to_status=to_status,
        actor=actor,
        data={"extension": request.id, "note": note},
    )


@transaction.atomic
def ticket_suspend(*, ticket_id: int, actor: User, reason: str) -> Ticket:
    """Stop the clock while the citizen is waited on (materials, an appointment on site)."""
    ticket, to_status = _begin(ticket_id=ticket_id, transition=Transition.SUSPEND, actor=actor)
    reason = _require_text(reason, field_name="reason", message="暂停计时必须说明等待群众的事项。")
    ticket.paused_at = clock.now()
    return _finish(
        ticket=ticket,
        transition=Transition.SUSPEND,
        to_status=to_status,
        actor=actor,
        fields=["paused_at"],
        data={"department": ticket.lead_department_id, "reason": reason},
    )


@transaction.atomic
def ticket_resume(*, ticket_id: int, actor: User, note: str = "") -> Ticket:
    """Start the clock again: the working time that was left at the pause is left again now."""
    ticket, to_status = _begin(ticket_id=ticket_id, transition=Transition.RESUME, actor=actor)
    now = clock.now()
    paused_at = ticket.paused_at or now
    calendar = working_calendar()
    unit = ticket.deadline_policy.reply_unit if ticket.deadline_policy else "working_days"
    fields = ["paused_at"]
    for due_field in ("reply_due_at", "reply_warning_at"):
        due = getattr(ticket, due_field)
        # A time already past at the pause stays where it was: it has been marked and escalated from, and
        # moving it would start the escalation ladder over.
        if due is None or due <= paused_at:
            continue
        left = calendar.elapsed(paused_at, due, unit)
        setattr(ticket, due_field, calendar.add_time(now, left, unit))
        fields.append(due_field)
    paused = calendar.elapsed(paused_at, now, unit)
    ticket.paused_at = None
    return _finish(
        ticket=ticket,
        transition=Transition.RESUME,
        to_status=to_status,
        actor=actor,
        fields=fields,
        data={
            "department": ticket.lead_department_id,
            "note": note.strip(),
            "paused_seconds": int(paused.total_seconds()),
            "reply_due_at": ticket.reply_due_at.isoformat() if ticket.reply_due_at else None,
        },
    )


@transaction.atomic
def ticket_reply(*, ticket_id: int, actor: User, reply_text: str, result: str) -> Ticket:
    ticket, to_status = _begin(ticket_id=ticket_id, transition=Transition.REPLY, actor=actor)
    if result not in ReplyResult.values:
        raise ApplicationError("办理结果无效。", code="invalid_choice", extra={"field": "result"})
    ticket.reply_text = _require_text(reply_text, field_name="reply_text", message="请填写答复内容。")
    ticket.reply_result = result
    ticket.replied_at = clock.now()
    late = bool(ticket.reply_due_at and ticket.replied_at > ticket.reply_due_at)
    return _finish(
        ticket=ticket,
        transition=Transition.REPLY,
        to_status=to_status,
        actor=actor,
        fields=["reply_text", "reply_result", "replied_at"],
        data={"department": ticket.lead_department_id, "result": result, "late": late},
    )


@transaction.atomic
def ticket_approve_reply(*, ticket_id: int, actor: User) -> Ticket:
    ticket, to_status = _begin(ticket_id=ticket_id, transition=Transition.APPROVE_REPLY, actor=actor)
    from .callbacks import callback_open  # built on this module's helpers

    callback = callback_open(ticket=ticket)
    # The approved reply is what the citizen is told; the trail keeps it as it was approved.
    return _finish(
        ticket=ticket,
        transition=Transition.APPROVE_REPLY,
        to_status=to_status,
        actor=actor,
        data={
            "department": ticket.lead_department_id,
            "reply_text": ticket.reply_text,
            "result": ticket.reply_result,
            "callback": {"task": callback.id, "method": callback.method},
        },
    )


@transaction.atomic
def ticket_reject_reply(*, ticket_id: int, actor: User, reason: str) -> Ticket:
    ticket, to_status = _begin(ticket_id=ticket_id, transition=Transition.REJECT_REPLY, actor=actor)
    reason = _require_text(reason, field_name="reason", message="退回重办必须说明理由。")
    ticket.replied_at = None
    return _finish(
        ticket=ticket,
        transition=Transition.REJECT_REPLY,
        to_status=to_status,
        actor=actor,
        fields=["replied_at"],
        data={"department": ticket.lead_department_id, "reason": reason},
    )


@transaction.atomic
def ticket_close(*, ticket_id: int, actor: User | None, satisfaction: str | None, comment: str = "") -> Ticket:
    """The callback's outcome when the citizen is satisfied (or cannot be reached: satisfaction None).
    Actor None: the system (the citizen's rating online, the automated callback)."""
    ticket, to_status = _begin(ticket_id=ticket_id, transition=Transition.CLOSE, actor=actor)
    from .callbacks import callback_settle

    callback_settle(ticket=ticket, actor=actor)
    if satisfaction not in (None, Satisfaction.SATISFIED, Satisfaction.FAIRLY_SATISFIED):
        raise ApplicationError(
            "不满意的工单应执行「不满意重办」。", code="dissatisfied_needs_reopen", extra={"field": "satisfaction"}
        )
    ticket.satisfaction = satisfaction or ""
    ticket.satisfaction_comment = comment.strip()
    ticket.closed_at = clock.now()
    return _finish(
        ticket=ticket,
        transition=Transition.CLOSE,
        to_status=to_status,
        actor=actor,
        fields=["satisfaction", "satisfaction_comment", "closed_at"],
        data={"satisfaction": satisfaction, "unreachable": satisfaction is None},
    )


@transaction.atomic
def ticket_reopen(*, ticket_id: int, actor: User | None, comment: str) -> Ticket:
    """Dissatisfied at callback: back to the same lead department with fresh deadlines. Actor None: the
    system (the citizen's rating online, the automated callback)."""
    ticket, to_status = _begin(ticket_id=ticket_id, transition=Transition.REOPEN, actor=actor)
    from .callbacks import callback_settle

    callback_settle(ticket=ticket, actor=actor)
    comment = _require_text(comment, field_name="comment", message="请记录群众不满意的原因。")
    if ticket.lead_department_id is None:
        raise ApplicationError("工单没有主办单位，无法重办。", code="no_lead_department")
    ticket.satisfaction = Satisfaction.DISSATISFIED
    ticket.satisfaction_comment = comment
    ticket.reopen_count += 1
    ticket.accepted_at = None
    ticket.replied_at = None
    fields = _apply_deadlines(ticket)
    return _finish(
        ticket=ticket,
        transition=Transition.REOPEN,
        to_status=to_status,
        actor=actor,
        fields=[*fields, "satisfaction", "satisfaction_comment", "reopen_count", "accepted_at", "replied_at"],
        data={
            "satisfaction": Satisfaction.DISSATISFIED.value,
            "department": ticket.lead_department_id,
            **_deadline_data(ticket),
        },
    )


@transaction.atomic
def ticket_merge(*, ticket_id: int, actor: User, into_ticket_id: int, note: str = "") -> Ticket:
    ticket, to_status = _begin(ticket_id=ticket_id, transition=Transition.MERGE, actor=actor)
    if into_ticket_id == ticket.id:
        raise ApplicationError("工单不能并入自身。", code="merge_into_self")
    into = ticket_visible_to(user=actor).select_for_update().filter(pk=into_ticket_id).first()
    if into is None:
        raise NotFound("要并入的工单不存在，或您无权查看。")
    if into.status in (Status.MERGED, Status.CANCELLED, Status.TRANSFERRED):
        raise ApplicationError("要并入的工单已并单、撤销或转外部。", code="merge_target_closed")
    ticket.merged_into = into
    merged = _finish(
        ticket=ticket,
        transition=Transition.MERGE,
        to_status=to_status,
        actor=actor,
        fields=["merged_into"],
        data={"into": into.id, "into_number": into.number, "note": note.strip()},
    )
    # The surviving ticket's trail shows what joined it.
    _record(
        ticket=into,
        kind=EVENT_MERGED_IN,
        actor=actor,
        from_status=into.status,
        to_status=into.status,
        data={"ticket": ticket.id, "number": ticket.number},
    )
    return merged


@transaction.atomic
def ticket_transfer(*, ticket_id: int, actor: User, target: str, note: str = "") -> Ticket:
    """Emergencies go at once to 110/119/120/122; litigation, arbitration, petitions and disclosure
    requests are told their legal route (国办函〔2025〕66号)."""
    ticket, to_status = _begin(ticket_id=ticket_id, transition=Transition.TRANSFER, actor=actor)
    if target not in ExternalTarget.values:
        raise ApplicationError("转外部去向无效。", code="invalid_choice", extra={"field": "target"})
    ticket.external_target = target
    ticket.closed_at = clock.now()
    return _finish(
        ticket=ticket,
        transition=Transition.TRANSFER,
        to_status=to_status,
        actor=actor,
        fields=["external_target", "closed_at"],
        data={"target": target, "note": note.strip()},
    )


@transaction.atomic
def ticket_cancel(*, ticket_id: int, actor: User, reason: str) -> Ticket:
    ticket, to_status = _begin(ticket_id=ticket_id, transition=Transition.CANCEL, actor=actor)
    reason = _require_text(reason, field_name="reason", message="撤销必须说明理由。")
    ticket.closed_at = clock.now()
    return _finish(
        ticket=ticket,
        transition=Transition.CANCEL,
        to_status=to_status,
        actor=actor,
        fields=["closed_at"],
        data={"reason": reason},
    )


# ---------------------------------------------------------------------------------------------------------
# handling inside and beside the lead department

HANDLING_STATES = frozenset({Status.DISPATCHED, Status.ACCEPTED, Status.SUSPENDED})


@transaction.atomic
def ticket_hand_to_unit(*, ticket_id: int, actor: User, unit_id: int | None, note: str = "") -> Ticket:
    """Hand the work to a sub-unit of the lead department (None takes it back). The lead department keeps
    the ticket, its deadlines and the reply."""
    ticket = _lock_visible(ticket_id=ticket_id, actor=actor)
    if not _may_act(actor, Side.DEPARTMENT, ticket):
        raise NotPermitted("只有主办单位可以交办下级单位。")
    if ticket.status not in HANDLING_STATES:
        raise InvalidTransition(
            f"工单当前状态为「{Status(ticket.status).label}」，不能交办。", extra={"status": ticket.status}
        )
    assert ticket.lead_department_id is not None
    previous = ticket.handling_unit_id
    if unit_id is not None and unit_id not in lead_department_unit_ids(ticket=ticket):
        raise ApplicationError("只能交办给主办单位的下级单位。", code="invalid_department", extra={"field": "unit"})
    ticket.handling_unit_id = unit_id
    ticket.updated_at = clock.now()
    ticket.save(update_fields=["handling_unit", "updated_at"])
    _record(
        ticket=ticket,
        kind=EVENT_HANDED_TO_UNIT,
        actor=actor,
        from_status=ticket.status,
        to_status=ticket.status,
        data={
            "department": ticket.lead_department_id,
            "unit": unit_id,
            "previous_unit": previous,
            "note": note.strip(),
        },
        extra_departments=[previous] if previous else [],
    )
    return ticket


ASSISTING_REPLY_MAX_LENGTH = 5000


@transaction.atomic
def ticket_assisting_reply_add(*, ticket_id: int, actor: User, department_id: int, text: str) -> AssistingReply:
    """An assisting department's part of the answer; the lead department sees it before it replies."""
    ticket = _lock_visible(ticket_id=ticket_id, actor=actor)
    if department_id not in user_actionable_department_ids(user=actor):
        raise NotPermitted("您不属于该协办单位。")
    if not ticket.assisting_departments.filter(pk=department_id).exists():
        raise ApplicationError("该单位不是本工单的协办单位。", code="not_assisting", extra={"field": "department"})
    if ticket.status not in HANDLING_STATES:
        raise InvalidTransition(
            f"工单当前状态为「{Status(ticket.status).label}」，不能填写协办意见。", extra={"status": ticket.status}
        )
    text = _require_text(text, field_name="text", message="请填写协办意见。")
    if len(text) > ASSISTING_REPLY_MAX_LENGTH:
        raise ApplicationError(
            f"协办意见不能超过 {ASSISTING_REPLY_MAX_LENGTH} 个字。", code="too_long", extra={"field": "text"}
        )
    part = AssistingReply.objects.create(
        ticket=ticket, department_id=department_id, author=actor, text=text, created_at=clock.now()
    )
    _record(
        ticket=ticket,
        kind=EVENT_ASSISTING_REPLY,
        actor=actor,
        from_status=ticket.status,
        to_status=ticket.status,
        data={"assisting_reply": part.id, "department": department_id},
    )
    return part


def attachment_limits() -> tuple[int, frozenset[str]]:
    return settings.TICKET_ATTACHMENT_MAX_BYTES, frozenset(settings.TICKET_ATTACHMENT_TYPES)


@transaction.atomic
def ticket_attachment_add(
    *, ticket_id: int, actor: User, name: str, content_type: str, data: bytes
) -> TicketAttachment:
    """Attach a file. Anyone who may see the ticket and works on it may attach; the file is internal."""
    ticket = _lock_visible(ticket_id=ticket_id, actor=actor)
    if ticket.status in TERMINAL_STATES:
        raise InvalidTransition("工单已结束，不能再添加附件。", extra={"status": ticket.status})
    own = user_actionable_department_ids(user=actor)
    department_id = next(
        (d for d in (ticket.lead_department_id, ticket.handling_unit_id) if d and d in own),
        None,
    )
    if department_id is None and own:
        department_id = ticket.assisting_departments.filter(pk__in=own).values_list("id", flat=True).first()
    _check_file(content_type=content_type, data=data, types=attachment_limits()[1])
    return _store_attachment(
        ticket, actor=actor, department_id=department_id, name=name, content_type=content_type, data=data
    )


def _check_file(*, content_type: str, data: bytes, types: frozenset[str]) -> None:
    max_bytes = attachment_limits()[0]
    if not data:
        raise ApplicationError("附件为空。", code="empty_file", extra={"field": "file"})
    if len(data) > max_bytes:
        raise ApplicationError(
            f"附件不能超过 {max_bytes // (1024 * 1024)} MB。", code="file_too_large", extra={"field": "file"}
        )
    if content_type not in types:
        raise ApplicationError(
            "不支持该类型的附件（可上传图片、PDF、Office 文档、音频）。",
            code="file_type_not_allowed",
            extra={"field": "file", "content_type": content_type},
        )


def _store_attachment(
    ticket: Ticket, *, actor: User | None, department_id: int | None, name: str, content_type: str, data: bytes
) -> TicketAttachment:
    name = (name or "附件").strip().replace("/", "_").replace("\\", "_")[:200]
    attachment = TicketAttachment(
        ticket=ticket,
        name=name,
        content_type=content_type,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        department_id=department_id,
        uploaded_by=actor,
        created_at=clock.now(),
    )
    # The stored name is random: the citizen's file name may carry personal data and never reaches a path.
    attachment.file.save(f"{secrets.token_hex(16)}", ContentFile(data), save=False)
    attachment.save()
    _record(
        ticket=ticket,
        kind=EVENT_ATTACHMENT,
        actor=actor,
        from_status=ticket.status,
        to_status=ticket.status,
        data={"attachment": attachment.id, "size": attachment.size, "content_type": content_type},
    )
    return attachment


# ---------------------------------------------------------------------------------------------------------
# notes and deadline marks


NOTE_MAX_LENGTH = 2000


@transaction.atomic
def ticket_note_add(*, ticket_id: int, actor: User, text: str) -> TicketEvent:
    """An internal note on the ticket's trail, for the centre and the departments; never public."""
    ticket = _lock_visible(ticket_id=ticket_id, actor=actor)
    text = _require_text(text, field_name="text", message="备注内容不能为空。")
    if len(text) > NOTE_MAX_LENGTH:
        raise ApplicationError(f"备注不能超过 {NOTE_MAX_LENGTH} 个字。", code="too_long", extra={"field": "text"})
    return _record(
        ticket=ticket,
        kind=EVENT_NOTE,
        actor=actor,
        from_status=ticket.status,
        to_status=ticket.status,
        data={"text": text},
    )


# For each deadline: the states in which it runs, and the ticket fields holding its warning and due time.
DEADLINES = {
    "accept": ({Status.DISPATCHED}, "accept_warning_at", "accept_due_at"),
    "return": ({Status.DISPATCHED, Status.ACCEPTED}, None, "return_due_at"),
    # The reply clock keeps running while a return is reviewed: returning does not buy time.
    "reply": ({Status.DISPATCHED, Status.ACCEPTED, Status.RETURN_PENDING}, "reply_warning_at", "reply_due_at"),
}


@transaction.atomic
def ticket_mark_deadline(*, ticket_id: int, deadline: str, mark: str) -> TicketEvent | None:
    """Record that a deadline is near (warning) or passed (overdue), once per deadline and due time.

    Safe to call repeatedly and from several sweepers at once: the row lock and the check for an existing
    mark make the second call a no-op (None). Also None when the deadline does not run in the ticket's
    state or its time has not come.
    """
    if deadline not in DEADLINES or mark not in ("warning", "overdue"):
        raise ApplicationError("未知的时限或标记。", code="invalid_deadline_mark")
    try:
        ticket = Ticket.objects.select_for_update().get(pk=ticket_id)
    except Ticket.DoesNotExist:
        raise NotFound("工单不存在。") from None
    states, warning_field, due_field = DEADLINES[deadline]
    due = getattr(ticket, due_field)
    threshold = due if mark == "overdue" else (getattr(ticket, warning_field) if warning_field else None)
    now = clock.now()
    if ticket.status not in states or due is None or threshold is None or now < threshold:
        return None
    due_at = due.astimezone(TZ).isoformat()
    data = {"mark": mark, "deadline": deadline, "due_at": due_at, "department": ticket.lead_department_id}
    already = ticket.events.filter(
        kind=EVENT_DEADLINE, data__mark=mark, data__deadline=deadline, data__due_at=due_at
    ).exists()
    if already:
        return None
    return _record(
        ticket=ticket, kind=EVENT_DEADLINE, actor=None, from_status=ticket.status, to_status=ticket.status, data=data
    )
