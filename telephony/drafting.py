"""The ticket draft that fills itself from what is said (智能填单), and emergency alerts.

`call_draft_fill` reads the call's final transcript segments, extracts what the ticket form can take
(`extraction.extract`) and writes it into the call's ticket draft through the ticketing services: it creates
the draft (as the call's agent, channel phone) the first time there is a transcript and an agent, links it to
the call, and then corrects it after every segment. Policy:

- never overwrite the agent: the call remembers a fingerprint of the value the filler last wrote into each
  field (`Call.draft_fields["set"]`); a field is changed only while it still holds that value, or is empty;
- never clear a field: what the transcript no longer says (or never said) leaves the field as it is;
- stop once the ticket is no longer a draft (submitted, answered, transferred …);
- no agent, no draft: the extraction is kept on the call (`Call.draft_fields["found"]`, phone numbers masked)
  and the draft is made when the PBX names the agent (ringing, transfer) or after the next segment.

`call_emergency_check` runs on partial and final text: emergency words raise a `call.alert` on the agent's
screen at once, once per call and emergency kind (the call's trail says which kinds were raised already).
"""

import hashlib
import json
import logging
from typing import Any

from django.db import transaction

from hotline.errors import NotFound
from ticketing import selectors as ticket_selectors
from ticketing import services as ticket_services
from ticketing.models import AppealType, Channel, Ticket, User
from ticketing.workflow import Status

from . import extraction, selectors, services
from .models import Call, CallEvent, CallEventKind

logger = logging.getLogger(__name__)

# The ticket fields the filler writes; ticketing.services.UPDATABLE_FIELDS allows each of them.
FILLED_FIELDS = ("title", "content", "appeal_type", "urgency", "region_id", "location_text", "caller_phone")
ALERT_KIND = "emergency"
TITLE_MAX_CHARS = 30
# Said at the start of an utterance, these carry nothing for a title.
TITLE_FILLERS = (
    "喂",
    "你好",
    "您好",
    "哎",
    "唉",
    "嗯",
    "啊",
    "呃",
    "哦",
    "噢",
    "对",
    "是这样的",
    "这样的",
    "那个",
    "就是",
)
ALERT_CONTEXT_CHARS = 15
LOCATION_MAX_CHARS = 300  # Ticket.location_text
PHONE_MAX_CHARS = 32  # Ticket.caller_phone


def _fingerprint(value: Any) -> str:
    """What the filler remembers of a value it wrote: enough to recognise it, nothing to read back."""
    return hashlib.sha256(json.dumps(value, ensure_ascii=False).encode()).hexdigest()[:16]


def _locked_call(call_id: int) -> Call:
    try:
        # No select_related: PostgreSQL cannot lock the nullable side of the outer join to the agent.
        return Call.objects.select_for_update().get(pk=call_id)
    except Call.DoesNotExist:
        raise NotFound("通话不存在。") from None


def _regions() -> list[extraction.RegionName]:
    rows = ticket_selectors.region_list().values_list("id", "name", "level", "parent_id")
    return [extraction.RegionName(id=pk, name=name, level=level, parent_id=parent) for pk, name, level, parent in rows]


def _without_fillers(text: str) -> str:
    stripped = True
    while stripped:
        stripped = False
        for filler in TITLE_FILLERS:
            if text.startswith(filler):
                text = text[len(filler) :].lstrip()
                stripped = True
    return text


def _title(texts: list[str], found: extraction.Extraction, appeal_type: str) -> str:
    """ "投诉：我要投诉幸福小区夜间施工噪音": the appeal type and the first utterance that names it (else the
    first one with some substance), without greetings and without long numbers."""
    label = str(AppealType(appeal_type).label)
    utterances = [_without_fillers(extraction.without_long_numbers(extraction.readable(text))) for text in texts]
    utterances = [text for text in utterances if len(text) >= 4]
    cues = found.appeal_type.words if found.appeal_type else ()
    head = next((text for text in utterances if any(cue in extraction.compact(text) for cue in cues)), None)
    if head is None:
        head = utterances[0] if utterances else ""
    if not head:
        return f"来电{label}"
    if len(head) > TITLE_MAX_CHARS:
        head = head[:TITLE_MAX_CHARS] + "…"
    return f"{label}：{head}"


def _proposal(call: Call, texts: list[str], found: extraction.Extraction) -> dict[str, Any]:
    """The form as the transcript fills it."""
    # Most calls without a cue word are questions (咨询); the agent corrects the rest.
    appeal_type = found.appeal_type.value if found.appeal_type else AppealType.INQUIRY
    # The number the caller gives as contact beats the caller id (a borrowed or public phone); without a
    # caller id, any number said will do.
    phone = found.contact_phone or call.caller_number.strip() or (found.phones[0].number if found.phones else "")
    return {
        "title": _title(texts, found, appeal_type),
        "content": "\n".join(extraction.readable(text) for text in texts).strip(),
        "appeal_type": str(appeal_type),
        "urgency": found.urgency.value,
        "region_id": found.region.region_id if found.region else None,
        "location_text": found.location_text[:LOCATION_MAX_CHARS].strip(),
        "caller_phone": phone[:PHONE_MAX_CHARS],
    }


def _owner(call: Call, state: dict[str, Any]) -> User | None:
    """Who writes on the draft: the agent it was created as (a draft is its creator's until submitted), else
    the call's agent."""
    owner_id = state.get("owner")
    owner = selectors.call_agent(user_id=owner_id) if owner_id is not None else None
    return owner or call.agent


def _create(call: Call, agent: User, state: dict[str, Any], proposal: dict[str, Any]) -> Ticket:
    ticket = ticket_services.ticket_create(
        data=ticket_services.TicketInput(
            hotline_line=call.hotline_line,
            channel=Channel.PHONE,
            appeal_type=proposal["appeal_type"],
            title=proposal["title"],
            content=proposal["content"],
            urgency=proposal["urgency"],
            region_id=proposal["region_id"],
            location_text=proposal["location_text"],
            caller_phone=proposal["caller_phone"],
            extra={"call_id": call.call_uuid},
        ),
        actor=agent,
        draft=True,
    )
    call.ticket = ticket
    state["owner"] = agent.id
    state["set"] = {name: _fingerprint(proposal[name]) for name in FILLED_FIELDS}
    logger.info("call %s: ticket draft %s created from the transcript", call.call_uuid, ticket.number)
    return ticket


def _update(call: Call, ticket_id: int, actor: User, state: dict[str, Any], proposal: dict[str, Any]) -> Ticket:
    try:
        # Locked before reading, so an agent's edit committed meanwhile is seen and kept.
        ticket = ticket_selectors.ticket_visible_to(user=actor).select_for_update().get(pk=ticket_id)
    except Ticket.DoesNotExist:
        raise NotFound("工单不存在，或您无权查看。") from None
    if ticket.status != Status.DRAFT:
        return ticket
    written: dict[str, str] = dict(state.get("set") or {})
    changes = {}
    for name in FILLED_FIELDS:
        value, current = proposal[name], getattr(ticket, name)
        if value in ("", None) or value == current:
            continue
        if current in ("", None) or _fingerprint(current) == written.get(name):
            changes[name] = value
    if changes:
        ticket = ticket_services.ticket_update(ticket_id=ticket.id, actor=actor, changes=changes)
        written.update({name: _fingerprint(value) for name, value in changes.items()})
        state["set"] = written
        logger.info("call %s: ticket draft %s filled: %s", call.call_uuid, ticket.number, ", ".join(sorted(changes)))
    return ticket


@transaction.atomic
def call_draft_fill(*, call_id: int) -> Ticket | None:
    """Fill the call's ticket draft from its final transcript; returns the linked ticket, or None while there
    is no draft. Idempotent and safe after every segment: the call row is locked, and nothing is written when
    nothing changed."""
    call = _locked_call(call_id)
    texts = [text for text in call.segments.order_by("index").values_list("text", flat=True) if text.strip()]
    before: dict[str, Any] = call.draft_fields or {}
    state = dict(before)
    ticket: Ticket | None = None
    created = False
    if texts:
        found = extraction.extract(" ".join(texts), regions=_regions())
        state["found"] = found.as_dict()
        state["segments"] = len(texts)
        proposal = _proposal(call, texts, found)
        if call.ticket_id is None:
            if call.agent is not None:
                ticket, created = _create(call, call.agent, state, proposal), True
        else:
            actor = _owner(call, state)
            if actor is not None:
                ticket = _update(call, call.ticket_id, actor, state, proposal)
    update_fields = ["ticket"] if created else []
    if state != before:
        update_fields.append("draft_fields")
    if update_fields:
        call.draft_fields = state
        call.save(update_fields=update_fields)
    return ticket


# ---------------------------------------------------------------------------------------------------------
# emergencies


def _alerted_kinds(call: Call) -> set[str]:
    kinds: set[str] = set()
    for data in CallEvent.objects.filter(call=call, kind=CallEventKind.ALERT).values_list("data", flat=True):
        if data.get("kind") == ALERT_KIND:
            kinds.update(kind for word in data.get("words", []) if (kind := extraction.emergency_kind_of(word)))
    return kinds


def _alert_text(emergency: extraction.Emergency, text: str) -> str:
    heard = extraction.readable(text)
    word = emergency.words[0]
    at = heard.find(word)
    if at == -1:
        snippet = heard[-2 * ALERT_CONTEXT_CHARS :]
    else:
        snippet = heard[max(0, at - ALERT_CONTEXT_CHARS) : at + len(word) + ALERT_CONTEXT_CHARS]
    return f"疑似{emergency.label}，请立即转接 {'、'.join(emergency.targets)}。来电人说：“{snippet.strip()}”"


def call_emergency_check(*, call_id: int, text: str) -> list[CallEvent]:
    """Emergency words in `text` (a partial or a final segment) raise an alert on the agent's screen: once
    per call and emergency kind. Returns the alerts raised now. Text without emergency words costs no
    database work, so this is cheap to call on every partial."""
    heard = extraction.find_emergencies(text)
    if not heard:
        return []
    return _alert(call_id=call_id, heard=heard, text=text)


@transaction.atomic
def _alert(*, call_id: int, heard: list[extraction.Emergency], text: str) -> list[CallEvent]:
    # The call row lock serializes two checks of one call (a partial and its final), so a kind is raised once.
    call = _locked_call(call_id)
    raised = _alerted_kinds(call)
    alerts = []
    for emergency in heard:
        if emergency.kind in raised:
            continue
        alerts.append(
            services.call_alert(
                call_id=call.id, kind=ALERT_KIND, words=list(emergency.words), text=_alert_text(emergency, text)
            )
        )
        logger.info("call %s: emergency %s heard", call.call_uuid, emergency.kind)
    return alerts
