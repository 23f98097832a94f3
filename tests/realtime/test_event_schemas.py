"""Each event type: a real payload from a real service call, checked against its schema.

Ticket events (ticket.created, ticket.transitioned for every transition of the table, ticket.updated,
ticket.note, ticket.deadline, ticket.activity, public.ticket) come from the ticketing services: each test
performs the call, records what `broadcast` sent after commit, validates the payload as a client receives
it with `events.parse`, and rebuilds the same stored event the way a reconnecting screen's catch-up does
(`ticketing.realtime`), which must give the identical payload.

call.started, call.ended, transcript.partial, transcript.final, routing.suggestion, routing.proactive_alert
and knowledge.suggestion are not stored ticket events, so their schemas are checked here with hand-built
payloads (tests/routing checks real routing payloads from the services against the same schemas): a valid
one parses, and an extra field, a missing field or a wrong type is refused. heartbeat, pong, catchup.complete
and error are sent by the base consumer, not by a service; they are checked the same way here, and
tests/realtime/test_subscriptions.py parses real ones off a socket.
"""

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from django.db.models import Q
from pydantic import ValidationError

from hotline import clock
from hotline.realtime import broadcast, groups
from hotline.realtime import events as rt
from tests.helpers import make_ticket, ticket_input
from ticketing import services
from ticketing.models import Ticket, TicketEvent
from ticketing.realtime import PUBLIC_STEPS, department_names_for, public_event, staff_event
from ticketing.selectors import ticket_events_missed
from ticketing.workflow import Status, Transition, target

# Types whose payloads passed `checked` in this module; the last test compares it with EVENT_TYPES.
EXERCISED: set[str] = set()

# A value no field of any schema accepts (not a string, number, date, mapping or list of strings/objects).
WRONG = [["wrong"]]


def checked(event: rt.RealtimeEvent, expected: type[rt.RealtimeEvent]) -> dict[str, Any]:
    """The payload as a client receives it, after checking it against its schema; returns the payload."""
    payload = json.loads(json.dumps(event.model_dump(mode="json")))
    parsed = rt.parse(payload)
    assert type(parsed) is expected
    assert parsed == event
    assert parsed.model_dump(mode="json") == payload
    assert_strict(expected, payload)
    EXERCISED.add(payload["type"])
    return payload


def assert_strict(cls: type[rt.RealtimeEvent], payload: dict[str, Any]) -> None:
    """A valid payload with one field added, a required one removed, or one of the wrong type is refused."""
    with pytest.raises(ValidationError):
        rt.parse({**payload, "unexpected": 1})
    with pytest.raises(ValidationError):
        cls.model_validate({**payload, "type": "ticket.other"})
    for name in payload:
        if name == "type":
            continue
        if cls.model_fields[name].is_required():
            with pytest.raises(ValidationError):
                rt.parse({key: value for key, value in payload.items() if key != name})
        with pytest.raises(ValidationError):
            rt.parse({**payload, name: WRONG})


# --- recording what services broadcast ---------------------------------------------------------------------


@dataclass(frozen=True)
class Sent:
    event: rt.RealtimeEvent
    groups: list[str]


@dataclass
class Broadcasts:
    batches: list[list[Sent]] = field(default_factory=list)

    def send_now(self, event: rt.RealtimeEvent, groups: Any) -> None:
        self.batches[-1].append(Sent(event, list(groups)))


@pytest.fixture
def broadcasts(monkeypatch, django_capture_on_commit_callbacks) -> Callable[[], Any]:  # type: ignore[no-untyped-def]
    """`with broadcasts() as sent:` runs the on-commit callbacks registered inside and records what they send.

    Setup outside the block broadcasts nothing: in a `db` test its callbacks never run."""
    recorder = Broadcasts()
    monkeypatch.setattr(broadcast, "send_now", recorder.send_now)

    @contextmanager
    def capture() -> Iterator[list[Sent]]:
        recorder.batches.append([])
        with django_capture_on_commit_callbacks(execute=True):
            yield recorder.batches[-1]

    return capture


def staff_sent(sent: list[Sent], cls: type[rt.RealtimeEvent] | None = None) -> list[Sent]:
    return [s for s in sent if not isinstance(s.event, rt.PublicTicketUpdate) and (cls is None or type(s.event) is cls)]


def public_sent(sent: list[Sent]) -> list[Sent]:
    return [s for s in sent if isinstance(s.event, rt.PublicTicketUpdate)]


def caught_up(event_id: int) -> TicketEvent:
    """The stored event as catch-up reads it (the selector the consumers use)."""
    stored = TicketEvent.objects.get(pk=event_id)
    missed = ticket_events_missed(scope=Q(ticket_id=stored.ticket_id), after=event_id - 1, grace=timedelta(0), limit=10)
    assert missed.events[0].id == event_id
    return missed.events[0]


def rebuilt_staff(event_id: int) -> dict[str, Any]:
    stored = caught_up(event_id)
    return staff_event(stored, stored.ticket).model_dump(mode="json")


def rebuilt_public(event_id: int) -> dict[str, Any] | None:
    stored = caught_up(event_id)
    update = public_event(stored, stored.ticket, department_names_for([stored]))
    return None if update is None else update.model_dump(mode="json")


def staff_groups_for(ticket: Ticket, *department_ids: int) -> set[str]:
    names = {groups.ticket(ticket.id), groups.supervisors(), groups.agent(ticket.created_by_id)}
    return names | {groups.department(d) for d in department_ids}


def no_caller_data(payload: dict[str, Any]) -> bool:
    text = json.dumps(payload, ensure_ascii=False)
    return "张三" not in text and "13812345678" not in text


# --- ticket.created ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("draft", [False, True], ids=["submitted", "draft"])
def test_ticket_create_sends_ticket_created_and_a_public_step_unless_draft(org, broadcasts, draft):
    with broadcasts() as sent:
        ticket = services.ticket_create(data=ticket_input(), actor=org.agent, draft=draft)

    (created,) = staff_sent(sent)
    payload = checked(created.event, rt.TicketCreated)
    stored = ticket.events.get()
    assert payload["event_id"] == stored.id and stored.kind == "created"
    assert payload["ticket_id"] == ticket.id and payload["number"] == ticket.number
    assert payload["status"] == ("draft" if draft else "pending_dispatch")
    assert (payload["hotline_line"], payload["channel"], payload["appeal_type"]) == ("12345", "phone", "complaint")
    assert payload["title"] == ticket.title and payload["created_by_id"] == org.agent.id
    assert no_caller_data(payload)
    assert set(created.groups) == staff_groups_for(ticket)
    assert payload == rebuilt_staff(stored.id)

    if draft:
        assert public_sent(sent) == []
        assert rebuilt_public(stored.id) is None
        return
    (public,) = public_sent(sent)
    update = checked(public.event, rt.PublicTicketUpdate)
    assert public.groups == [groups.public_ticket(ticket.id)]
    assert (update["event_id"], update["step"], update["status"]) == (stored.id, "received", "pending_dispatch")
    assert update["department"] is None and update["reply"] is None
    assert update == rebuilt_public(stored.id)


# --- ticket.transitioned, for every transition ---------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    start: Status
    act: Callable[..., Any]
    # Department attributes of `org` whose groups receive the event.
    departments: tuple[str, ...] = ()
    # (step, department attribute or None, reply text or None) on the public page; None: nothing public.
    public: tuple[str, str | None, str | None] | None = None
    prepare: Callable[[Any, Ticket], dict[str, Any]] = lambda org, ticket: {}


def _request_extension(org, ticket: Ticket) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    services.ticket_request_extension(ticket_id=ticket.id, actor=org.handler, working_days=3, reason="需要现场勘查")
    return {}


def _merge_target(org, ticket: Ticket) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    return {"into": services.ticket_create(data=ticket_input(title="并单目标"), actor=org.agent)}


REPLY_TEXT = "已责令停止夜间施工。"  # what make_ticket's handler replies

SCENARIOS: dict[Transition, Scenario] = {
    Transition.SUBMIT: Scenario(
        Status.DRAFT,
        lambda org, t: services.ticket_submit(ticket_id=t.id, actor=org.agent),
        public=("received", None, None),
    ),
    Transition.INSTANT_REPLY: Scenario(
        Status.PENDING_DISPATCH,
        lambda org, t: services.ticket_instant_reply(ticket_id=t.id, actor=org.agent, reply_text="已告知办理渠道。"),
        public=("replied", None, "已告知办理渠道。"),
    ),
    Transition.DISPATCH: Scenario(
        Status.PENDING_DISPATCH,
        lambda org, t: services.ticket_dispatch(ticket_id=t.id, actor=org.dispatcher, lead_department_id=org.bureau.id),
        departments=("bureau",),
        public=("dispatched", "bureau", None),
    ),
    Transition.ACCEPT: Scenario(
        Status.DISPATCHED,
        lambda org, t: services.ticket_accept(ticket_id=t.id, actor=org.handler),
        departments=("bureau",),
        public=("accepted", "bureau", None),
    ),
    Transition.RETURN: Scenario(
        Status.DISPATCHED,
        lambda org, t: services.ticket_return(ticket_id=t.id, actor=org.handler, reason="不属于本单位职责"),
        departments=("bureau",),
    ),
    Transition.APPROVE_RETURN: Scenario(
        Status.RETURN_PENDING,
        lambda org, t: services.ticket_approve_return(ticket_id=t.id, actor=org.dispatcher, note="同意"),
        departments=("bureau",),
    ),
    Transition.REJECT_RETURN: Scenario(
        Status.RETURN_PENDING,
        lambda org, t: services.ticket_reject_return(ticket_id=t.id, actor=org.dispatcher, reason="属于本单位职责"),
        departments=("bureau",),
    ),
    Transition.REASSIGN: Scenario(
        Status.DISPATCHED,
        lambda org, t: services.ticket_reassign(
            ticket_id=t.id, actor=org.dispatcher, lead_department_id=org.other_bureau.id, reason="职责调整"
        ),
        departments=("bureau", "other_bureau"),
        public=("dispatched", "other_bureau", None),
    ),
    Transition.REQUEST_EXTENSION: Scenario(
        Status.ACCEPTED,
        lambda org, t: services.ticket_request_extension(
            ticket_id=t.id, actor=org.handler, working_days=3, reason="需要现场勘查"
        ),
        departments=("bureau",),
    ),
    Transition.APPROVE_EXTENSION: Scenario(
        Status.ACCEPTED,
        lambda org, t: services.ticket_approve_extension(ticket_id=t.id, actor=org.supervisor, note="同意"),
        departments=("bureau",),
        public=("extended", "bureau", None),
        prepare=_request_extension,
    ),
    Transition.REJECT_EXTENSION: Scenario(
        Status.ACCEPTED,
        lambda org, t: services.ticket_reject_extension(ticket_id=t.id, actor=org.supervisor, note="理由不充分"),
        departments=("bureau",),
        prepare=_request_extension,
    ),
    Transition.SUSPEND: Scenario(
        Status.ACCEPTED,
        lambda org, t: services.ticket_suspend(ticket_id=t.id, actor=org.handler, reason="等待补充材料"),
        departments=("bureau",),
    ),
    Transition.RESUME: Scenario(
        Status.SUSPENDED,
        lambda org, t: services.ticket_resume(ticket_id=t.id, actor=org.handler, note="材料已补齐"),
        departments=("bureau",),
    ),
    Transition.REPLY: Scenario(
        Status.ACCEPTED,
        lambda org, t: services.ticket_reply(ticket_id=t.id, actor=org.handler, reply_text="已处理。", result="solved"),
        departments=("bureau",),
    ),
    Transition.APPROVE_REPLY: Scenario(
        Status.REPLIED,
        lambda org, t: services.ticket_approve_reply(ticket_id=t.id, actor=org.dispatcher),
        departments=("bureau",),
        public=("replied", "bureau", REPLY_TEXT),
    ),
    Transition.REJECT_REPLY: Scenario(
        Status.REPLIED,
        lambda org, t: services.ticket_reject_reply(ticket_id=t.id, actor=org.dispatcher, reason="答复不完整"),
        departments=("bureau",),
    ),
    Transition.CLOSE: Scenario(
        Status.CALLBACK,
        lambda org, t: services.ticket_close(ticket_id=t.id, actor=org.agent, satisfaction="satisfied"),
        departments=("bureau",),
        public=("closed", "bureau", None),
    ),
    Transition.REOPEN: Scenario(
        Status.CALLBACK,
        lambda org, t: services.ticket_reopen(ticket_id=t.id, actor=org.agent, comment="问题没有解决"),
        departments=("bureau",),
        public=("dispatched", "bureau", None),
    ),
    Transition.MERGE: Scenario(
        Status.PENDING_DISPATCH,
        lambda org, t, into: services.ticket_merge(ticket_id=t.id, actor=org.agent, into_ticket_id=into.id),
        public=("merged", None, None),
        prepare=_merge_target,
    ),
    Transition.TRANSFER: Scenario(
        Status.PENDING_DISPATCH,
        lambda org, t: services.ticket_transfer(ticket_id=t.id, actor=org.agent, target="110"),
        public=("transferred", None, None),
    ),
    Transition.CANCEL: Scenario(
        Status.PENDING_DISPATCH,
        lambda org, t: services.ticket_cancel(ticket_id=t.id, actor=org.agent, reason="来电人撤回诉求"),
        public=("cancelled", None, None),
    ),
}


def test_there_is_a_scenario_for_every_transition_and_every_public_step():
    assert set(SCENARIOS) == set(Transition)
    assert {s.public[0] for s in SCENARIOS.values() if s.public} == set(PUBLIC_STEPS.values())


@pytest.mark.parametrize("transition", list(Transition), ids=lambda t: t.value)
def test_each_transition_sends_a_valid_ticket_transitioned(org, broadcasts, transition):
    scenario = SCENARIOS[transition]
    ticket = make_ticket(org, scenario.start)
    prepared = scenario.prepare(org, ticket)
    with broadcasts() as sent:
        scenario.act(org, ticket, **prepared)

    # A merge also tells the surviving ticket's screens (ticket.activity, tested below).
    assert len(staff_sent(sent)) == (2 if transition == Transition.MERGE else 1)
    (moved,) = staff_sent(sent, rt.TicketTransitioned)
    payload = checked(moved.event, rt.TicketTransitioned)
    stored = TicketEvent.objects.get(pk=payload["event_id"])
    assert stored.ticket_id == payload["ticket_id"] == ticket.id and stored.kind == transition.value
    assert payload["transition"] == transition.value
    assert payload["from_status"] == scenario.start
    assert payload["to_status"] == target(transition, scenario.start)
    assert payload["actor_id"] == stored.actor_id and stored.actor_id is not None
    assert payload["data"] == stored.data
    # The lead department once the transition is done (None after a return).
    ticket.refresh_from_db()
    assert payload["lead_department_id"] == ticket.lead_department_id
    department_ids = [getattr(org, name).id for name in scenario.departments]
    assert set(moved.groups) == staff_groups_for(ticket, *department_ids)
    assert payload == rebuilt_staff(stored.id)

    if scenario.public is None:
        assert public_sent(sent) == []
        assert rebuilt_public(stored.id) is None
        return
    step, department, reply = scenario.public
    (public,) = public_sent(sent)
    update = checked(public.event, rt.PublicTicketUpdate)
    assert public.groups == [groups.public_ticket(ticket.id)]
    assert (update["event_id"], update["number"], update["step"]) == (stored.id, ticket.number, step)
    assert update["status"] == target(transition, scenario.start)
    assert update["department"] == (getattr(org, department).name if department else None)
    assert update["reply"] == reply
    assert update == rebuilt_public(stored.id)


# --- ticket.updated, ticket.note, ticket.activity ------------------------------------------------------------


def test_ticket_update_sends_ticket_updated_with_field_names_only(org, broadcasts):
    ticket = make_ticket(org, Status.PENDING_DISPATCH)
    with broadcasts() as sent:
        services.ticket_update(
            ticket_id=ticket.id, actor=org.agent, changes={"title": "工地夜间施工", "caller_phone": "13900001111"}
        )

    (updated,) = staff_sent(sent)
    payload = checked(updated.event, rt.TicketUpdated)
    stored = TicketEvent.objects.get(pk=payload["event_id"])
    assert stored.ticket_id == ticket.id and stored.kind == "updated"
    assert payload["fields"] == ["caller_phone", "title"]
    assert payload["actor_id"] == org.agent.id
    assert "13900001111" not in json.dumps(payload) and "工地夜间施工" not in json.dumps(payload, ensure_ascii=False)
    assert set(updated.groups) == staff_groups_for(ticket)
    assert payload == rebuilt_staff(stored.id)
    assert public_sent(sent) == [] and rebuilt_public(stored.id) is None


def test_ticket_note_add_sends_ticket_note_to_staff_only(org, broadcasts):
    ticket = make_ticket(org, Status.ACCEPTED)
    with broadcasts() as sent:
        services.ticket_note_add(ticket_id=ticket.id, actor=org.handler, text="已电话联系施工方")

    (note,) = staff_sent(sent)
    payload = checked(note.event, rt.TicketNoteAdded)
    stored = TicketEvent.objects.get(pk=payload["event_id"])
    assert stored.ticket_id == ticket.id and stored.kind == "note"
    assert (payload["author_id"], payload["text"]) == (org.handler.id, "已电话联系施工方")
    assert set(note.groups) == staff_groups_for(ticket, org.bureau.id)
    assert payload == rebuilt_staff(stored.id)
    assert public_sent(sent) == [] and rebuilt_public(stored.id) is None


def test_contact_reveal_sends_ticket_activity_without_the_contact(org, broadcasts):
    ticket = make_ticket(org, Status.DISPATCHED)
    with broadcasts() as sent:
        contact = services.ticket_contact_reveal(ticket_id=ticket.id, actor=org.handler)
    assert contact["caller_phone"] == "13812345678"

    (activity,) = staff_sent(sent)
    payload = checked(activity.event, rt.TicketActivity)
    stored = TicketEvent.objects.get(pk=payload["event_id"])
    assert stored.ticket_id == ticket.id
    assert (payload["kind"], payload["actor_id"], payload["data"]) == ("contact_viewed", org.handler.id, {})
    assert no_caller_data(payload)
    assert set(activity.groups) == staff_groups_for(ticket, org.bureau.id)
    assert payload == rebuilt_staff(stored.id)
    assert public_sent(sent) == [] and rebuilt_public(stored.id) is None


def test_merge_sends_ticket_activity_to_the_surviving_ticket(org, broadcasts):
    ticket = make_ticket(org, Status.PENDING_DISPATCH)
    into = make_ticket(org, Status.DISPATCHED, title="并单目标")
    with broadcasts() as sent:
        services.ticket_merge(ticket_id=ticket.id, actor=org.agent, into_ticket_id=into.id)

    (activity,) = staff_sent(sent, rt.TicketActivity)
    payload = checked(activity.event, rt.TicketActivity)
    stored = TicketEvent.objects.get(pk=payload["event_id"])
    assert stored.ticket_id == payload["ticket_id"] == into.id and payload["number"] == into.number
    assert payload["kind"] == "merged_in" and payload["actor_id"] == org.agent.id
    assert payload["data"] == {"ticket": ticket.id, "number": ticket.number}
    assert set(activity.groups) == staff_groups_for(into, org.bureau.id)
    assert payload == rebuilt_staff(stored.id)
    # The merged ticket's own page says "merged"; the surviving one's page shows nothing new.
    assert [p.groups for p in public_sent(sent)] == [[groups.public_ticket(ticket.id)]]
    assert rebuilt_public(stored.id) is None


# --- ticket.deadline ---------------------------------------------------------------------------------------

DEADLINE_MARKS = [
    ("accept", "warning", "accept_warning_at", "accept_due_at"),
    ("accept", "overdue", "accept_due_at", "accept_due_at"),
    ("return", "overdue", "return_due_at", "return_due_at"),
    ("reply", "warning", "reply_warning_at", "reply_due_at"),
    ("reply", "overdue", "reply_due_at", "reply_due_at"),
]


@pytest.mark.parametrize(
    ("deadline", "mark", "threshold_field", "due_field"),
    DEADLINE_MARKS,
    ids=[f"{d}-{m}" for d, m, _, _ in DEADLINE_MARKS],
)
def test_mark_deadline_sends_ticket_deadline(org, broadcasts, deadline, mark, threshold_field, due_field):
    ticket = make_ticket(org, Status.DISPATCHED)
    ticket.refresh_from_db()
    due = getattr(ticket, due_field)
    at = getattr(ticket, threshold_field) + timedelta(seconds=1)
    with clock.frozen(at), broadcasts() as sent:
        services.ticket_mark_deadline(ticket_id=ticket.id, deadline=deadline, mark=mark)

    (marked,) = staff_sent(sent)
    payload = checked(marked.event, rt.TicketDeadlineMarked)
    stored = TicketEvent.objects.get(pk=payload["event_id"])
    assert stored.ticket_id == ticket.id and stored.kind == "deadline" and stored.actor_id is None
    assert (payload["deadline"], payload["mark"]) == (deadline, mark)
    parsed = rt.parse(payload)
    assert isinstance(parsed, rt.TicketDeadlineMarked)
    assert parsed.due_at == due and parsed.occurred_at == at
    assert payload["lead_department_id"] == org.bureau.id
    assert set(marked.groups) == staff_groups_for(ticket, org.bureau.id)
    assert payload == rebuilt_staff(stored.id)
    assert public_sent(sent) == [] and rebuilt_public(stored.id) is None


# --- catch-up long after the fact ----------------------------------------------------------------------------


def live_payloads(sent: list[Sent]) -> dict[tuple[int, str], dict[str, Any]]:
    return {(s.event.event_id, s.event.type): s.event.model_dump(mode="json") for s in sent}  # type: ignore[attr-defined]


def test_catch_up_of_ticket_created_after_a_correction_matches_the_live_payload(org, broadcasts):
    with broadcasts() as sent:
        ticket = services.ticket_create(data=ticket_input(), actor=org.agent, draft=True)
    live = live_payloads(sent)
    services.ticket_update(ticket_id=ticket.id, actor=org.agent, changes={"title": "工地夜间施工", "urgency": "urgent"})
    (created_id,) = {event_id for event_id, _ in live}
    assert rebuilt_staff(created_id) == live[(created_id, "ticket.created")]


def test_catch_up_of_a_transition_after_the_ticket_moved_on_matches_the_live_payload(org, broadcasts):
    ticket = make_ticket(org, Status.DISPATCHED)
    with broadcasts() as sent:
        services.ticket_accept(ticket_id=ticket.id, actor=org.handler)
    live = live_payloads(sent)
    (accept_id,) = {event_id for event_id, _ in live}
    assert live[(accept_id, "ticket.transitioned")]["lead_department_id"] == org.bureau.id
    services.ticket_reassign(
        ticket_id=ticket.id, actor=org.dispatcher, lead_department_id=org.other_bureau.id, reason="职责调整"
    )
    assert rebuilt_staff(accept_id) == live[(accept_id, "ticket.transitioned")]
    assert rebuilt_public(accept_id) == live[(accept_id, "public.ticket")]


# --- events without a service yet, and the consumer's own messages -----------------------------------------

SUGGESTION = {"id": 3, "title": "市住房和城乡建设局", "score": 0.92, "reason": "物业管理类诉求"}

HAND_BUILT: dict[str, dict[str, Any]] = {
    "call.started": {
        "type": "call.started",
        "call_id": "c-20260301-0001",
        "hotline_line": "12345",
        "caller_masked": "138****5678",
        "agent_id": 7,
        "started_at": "2026-03-01T09:00:00+08:00",
    },
    "call.ended": {
        "type": "call.ended",
        "call_id": "c-20260301-0001",
        "ended_at": "2026-03-01T09:05:00Z",
        "ticket_id": None,
    },
    "call.state": {
        "type": "call.state",
        "call_id": "c-20260301-0001",
        "event": "transferred",
        "status": "active",
        "agent_id": 8,
        "agent_extension": "8002",
        "occurred_at": "2026-03-01T09:03:00Z",
    },
    "call.alert": {
        "type": "call.alert",
        "call_id": "c-20260301-0001",
        "kind": "emergency",
        "words": ["着火"],
        "text": "楼下着火了",
        "occurred_at": "2026-03-01T09:02:00Z",
    },
    "agent.state": {
        "type": "agent.state",
        "agent_id": 7,
        "agent_name": "王坐席",
        "state": "wrap_up",
        "since": "2026-03-01T09:05:00Z",
        "call_id": "c-20260301-0001",
        "reason": "hung_up",
    },
    "transcript.partial": {
        "type": "transcript.partial",
        "call_id": "c-20260301-0001",
        "text": "我要反映小区",
        "audio_ms": 1800,
    },
    "transcript.final": {
        "type": "transcript.final",
        "call_id": "c-20260301-0001",
        "segment_id": 4,
        "text": "我要反映小区夜间施工噪音。",
        "start_ms": 1200,
        "end_ms": 3400,
    },
    "routing.suggestion": {
        "type": "routing.suggestion",
        "call_id": "c-20260301-0001",
        "ticket_id": None,
        "departments": [SUGGESTION],
        "outcome": "preselected",
        "external_target": "",
        "script": "",
        "rules": ["供暖"],
        "duplicates": [{"id": 41, "title": "12345-20260301-000041 小区噪音", "score": 0.6, "reason": "同一来电人"}],
    },
    "routing.proactive_alert": {
        "type": "routing.proactive_alert",
        "alert_id": 2,
        "region_id": 5,
        "region_name": "太原街街道",
        "category_id": 9,
        "category_name": "城乡建设/物业管理",
        "ticket_ids": [11, 12, 13],
        "count": 3,
        "window_days": 7,
        "text": "太原街街道「城乡建设/物业管理」7 天内已有 3 件诉求，请提前处置（未诉先办）。",
        "raised_at": "2026-03-01T09:00:00Z",
    },
    "knowledge.suggestion": {
        "type": "knowledge.suggestion",
        "call_id": None,
        "ticket_id": 12,
        "articles": [SUGGESTION],
    },
    "catchup.complete": {"type": "catchup.complete", "last_event_id": 0, "count": 0, "truncated": False},
    "heartbeat": {"type": "heartbeat", "at": "2026-03-01T09:00:25Z"},
    "pong": {"type": "pong"},
    "error": {"type": "error", "code": "unknown_message", "detail": '只支持 {"type": "ping"}。'},
}

# Plausible mistakes a sender could make, per type: (field, value).
WRONG_VALUES: dict[str, list[tuple[str, Any]]] = {
    "call.started": [("call_id", 1001), ("agent_id", "agent-7"), ("started_at", "上午九点"), ("caller_masked", None)],
    "call.ended": [("ended_at", "later"), ("ticket_id", "12345-20260301-000001"), ("call_id", None)],
    "call.state": [("event", "dialled"), ("agent_id", "agent-8"), ("occurred_at", "soon")],
    "call.alert": [("words", "着火"), ("text", None), ("kind", 3)],
    "agent.state": [("state", "busy"), ("agent_id", None), ("since", "刚才"), ("call_id", 5), ("reason", None)],
    "transcript.partial": [("text", None), ("call_id", 5), ("audio_ms", "1.8s")],
    "transcript.final": [("segment_id", "4a"), ("start_ms", 1.5), ("end_ms", None), ("text", ["a"])],
    "routing.suggestion": [
        ("departments", SUGGESTION),
        ("departments", [{**SUGGESTION, "score": "high"}]),
        ("departments", [{**SUGGESTION, "extra": 1}]),
        ("departments", [{k: v for k, v in SUGGESTION.items() if k != "reason"}]),
        ("ticket_id", "x"),
        ("rules", "供暖"),
        ("duplicates", [{**SUGGESTION, "id": "12345-20260301-000041"}]),
        ("outcome", None),
    ],
    "routing.proactive_alert": [
        ("ticket_ids", "11,12,13"),
        ("count", "three"),
        ("raised_at", "today"),
        ("region_id", None),
        ("text", None),
    ],
    "knowledge.suggestion": [
        ("articles", "faq-1"),
        ("articles", [{**SUGGESTION, "id": "faq-1"}]),
        ("articles", [{**SUGGESTION, "url": "http://x"}]),
        ("call_id", 5),
    ],
    "catchup.complete": [
        ("count", "many"),
        ("last_event_id", "latest"),
        ("last_event_id", None),
        ("count", None),
        ("truncated", "maybe"),
    ],
    "heartbeat": [("at", "now"), ("at", None)],
    "pong": [("type", "ping")],
    "error": [("code", 4400), ("detail", None)],
}


TICKET_TYPES = {
    "ticket.created",
    "ticket.transitioned",
    "ticket.updated",
    "ticket.note",
    "ticket.deadline",
    "ticket.activity",
    "public.ticket",
}


def test_every_type_without_a_service_has_a_hand_built_payload():
    assert set(HAND_BUILT) == set(WRONG_VALUES)
    assert set(HAND_BUILT) | TICKET_TYPES == set(rt.EVENT_TYPES)
    assert not set(HAND_BUILT) & TICKET_TYPES


@pytest.mark.parametrize("type_name", sorted(HAND_BUILT))
def test_schema_without_a_service_is_strict(type_name):
    payload = HAND_BUILT[type_name]
    cls = rt.EVENT_TYPES[type_name]
    event = cls.model_validate(payload)
    checked(event, cls)
    # Every field is in the payload, so checked() also tried each one missing and of the wrong type.
    assert set(payload) == set(cls.model_fields)
    for name, value in WRONG_VALUES[type_name]:
        with pytest.raises(ValidationError):
            cls.model_validate({**payload, name: value})
    with pytest.raises(ValidationError):
        event.type = "other"  # events are frozen


# --- coverage --------------------------------------------------------------------------------------------------


def test_every_event_type_is_exercised_by_a_test_of_this_module(request):
    tests_here = {name for name in vars(request.module) if name.startswith("test_")}
    selected = {item.originalname for item in request.session.items if item.module is request.module}
    if selected != tests_here:
        pytest.skip("only meaningful when the whole module runs")
    missing = set(rt.EVENT_TYPES) - EXERCISED
    assert not missing, f"no passing test checked a payload of: {sorted(missing)}"
    assert set(rt.EVENT_TYPES) == EXERCISED
