"""Every (transition, from-state) pair of the table: allowed pairs move the ticket and write one event;
refused pairs change nothing and write nothing."""

from typing import Any

import pytest

from hotline.errors import InvalidTransition, NotFound
from tests.helpers import make_ticket, transition_body
from ticketing import services, workflow
from ticketing.api.views import TRANSITION_INPUTS
from ticketing.models import Ticket, TicketEvent
from ticketing.selectors import ticket_visible_to
from ticketing.workflow import Side, Status, Transition

PAIRS = [(transition, status) for transition in Transition for status in Status]


def _actor(org, transition: Transition):  # type: ignore[no-untyped-def]
    return {
        Side.INTAKE: org.agent,
        Side.DISPATCH: org.dispatcher,
        Side.SUPERVISION: org.supervisor,
        Side.DEPARTMENT: org.handler,
    }[workflow.SIDES[transition]]


def _arguments(org, transition: Transition) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """The service's keyword arguments, from the API body through the endpoint's own input serializer."""
    into_ticket_id = 1
    if transition == Transition.MERGE:
        into_ticket_id = make_ticket(org, Status.PENDING_DISPATCH, title="并单目标工单").id
    serializer = TRANSITION_INPUTS[transition](data=transition_body(org, transition, into_ticket_id=into_ticket_id))
    assert serializer.is_valid(), serializer.errors
    return dict(serializer.validated_data)


def _prepare(org, transition: Transition, status: Status) -> Ticket:  # type: ignore[no-untyped-def]
    ticket = make_ticket(org, status)
    if transition in (Transition.APPROVE_EXTENSION, Transition.REJECT_EXTENSION) and status == Status.ACCEPTED:
        services.ticket_request_extension(ticket_id=ticket.id, actor=org.handler, working_days=3, reason="需勘查")
    return ticket


@pytest.mark.parametrize(("transition", "status"), PAIRS, ids=[f"{t.value}-from-{s.value}" for t, s in PAIRS])
def test_transition_table_pair(org, transition, status, django_capture_on_commit_callbacks):
    ticket = _prepare(org, transition, status)
    actor = _actor(org, transition)
    arguments = _arguments(org, transition)
    service = getattr(services, f"ticket_{transition.value}")
    last_event_id = TicketEvent.objects.filter(ticket=ticket).order_by("-id").values_list("id", flat=True).first()
    expected = workflow.TABLE[transition].get(status)

    if expected is None:
        # The actor is one who may perform this transition somewhere; only the state refuses it here.
        can_see = ticket_visible_to(user=actor).filter(pk=ticket.id).exists()
        with pytest.raises(InvalidTransition if can_see else NotFound):
            service(ticket_id=ticket.id, actor=actor, **arguments)
        ticket.refresh_from_db()
        assert ticket.status == status
        assert not TicketEvent.objects.filter(ticket=ticket, id__gt=last_event_id).exists()
        return

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        result = service(ticket_id=ticket.id, actor=actor, **arguments)
    assert result.status == expected
    ticket.refresh_from_db()
    assert ticket.status == expected
    event = TicketEvent.objects.filter(ticket=ticket, id__gt=last_event_id).order_by("id").first()
    assert event is not None
    assert event.kind == transition.value
    assert event.from_status == status
    assert event.to_status == expected
    assert event.actor_id == actor.id
    assert callbacks, "a realtime event is broadcast after commit"


def test_table_covers_every_transition_and_only_known_states():
    assert set(workflow.TABLE) == set(Transition)
    for moves in workflow.TABLE.values():
        assert set(moves) <= set(Status)
        assert set(moves.values()) <= set(Status)
    # Terminal states allow nothing.
    for status in workflow.TERMINAL:
        assert workflow.allowed_from(status) == []


def test_ticket_events_are_append_only(org):
    ticket = make_ticket(org, Status.PENDING_DISPATCH)
    event = ticket.events.get()
    event.kind = "tampered"
    with pytest.raises(RuntimeError):
        event.save()
    with pytest.raises(RuntimeError):
        event.delete()
    assert ticket.events.get().kind == "created"


def test_return_after_the_window_is_refused(org):
    from datetime import timedelta

    from hotline import clock
    from hotline.errors import ApplicationError

    ticket = make_ticket(org, Status.DISPATCHED)
    with clock.frozen(ticket.return_due_at + timedelta(minutes=1)), pytest.raises(ApplicationError) as refused:
        services.ticket_return(ticket_id=ticket.id, actor=org.handler, reason="不属于本单位")
    assert refused.value.code == "return_window_closed"
    ticket.refresh_from_db()
    assert ticket.status == Status.DISPATCHED


def test_extension_limits_follow_the_policy(org):
    from hotline.errors import ApplicationError

    ticket = make_ticket(org, Status.ACCEPTED)
    policy = ticket.deadline_policy
    with pytest.raises(ApplicationError) as too_long:
        services.ticket_request_extension(
            ticket_id=ticket.id, actor=org.handler, working_days=policy.max_extension_working_days + 1, reason="久"
        )
    assert too_long.value.code == "extension_too_long"
    before = ticket.reply_due_at
    services.ticket_request_extension(ticket_id=ticket.id, actor=org.handler, working_days=2, reason="需勘查")
    ticket = services.ticket_approve_extension(ticket_id=ticket.id, actor=org.supervisor)
    assert ticket.reply_due_at > before
    assert ticket.extension_count == 1
    # The default policy allows one extension.
    with pytest.raises(ApplicationError) as exhausted:
        services.ticket_request_extension(ticket_id=ticket.id, actor=org.handler, working_days=2, reason="再延")
    assert exhausted.value.code == "extension_limit_reached"


def test_reopen_sends_the_ticket_back_to_the_same_department_with_new_deadlines(org):
    from datetime import timedelta

    from hotline import clock

    ticket = make_ticket(org, Status.CALLBACK)
    first_due = ticket.reply_due_at
    with clock.frozen(clock.now() + timedelta(days=10)):
        ticket = services.ticket_reopen(ticket_id=ticket.id, actor=org.agent, comment="噪音依旧")
    assert ticket.status == Status.DISPATCHED
    assert ticket.lead_department_id == org.bureau.id
    assert ticket.satisfaction == "dissatisfied"
    assert ticket.reopen_count == 1
    assert ticket.reply_due_at > first_due


def test_merge_records_on_both_tickets_and_refuses_self(org):
    from hotline.errors import ApplicationError

    ticket = make_ticket(org, Status.PENDING_DISPATCH)
    with pytest.raises(ApplicationError):
        services.ticket_merge(ticket_id=ticket.id, actor=org.agent, into_ticket_id=ticket.id)
    into = make_ticket(org, Status.DISPATCHED)
    services.ticket_merge(ticket_id=ticket.id, actor=org.agent, into_ticket_id=into.id)
    assert into.events.filter(kind="merged_in", data__ticket=ticket.id).exists()
    ticket.refresh_from_db()
    assert ticket.merged_into_id == into.id


def test_department_cannot_act_on_another_departments_ticket(org):
    from hotline.errors import NotFound

    ticket = make_ticket(org, Status.DISPATCHED, department=org.other_bureau)
    with pytest.raises(NotFound):
        services.ticket_accept(ticket_id=ticket.id, actor=org.handler)


def test_department_lead_may_act_for_a_sub_unit_but_a_handler_of_the_parent_may_not(org):
    from hotline.errors import NotFound

    ticket = make_ticket(org, Status.DISPATCHED, department=org.bureau_unit)
    with pytest.raises(NotFound):
        services.ticket_accept(ticket_id=ticket.id, actor=org.handler)
    accepted = services.ticket_accept(ticket_id=ticket.id, actor=org.lead)
    assert accepted.status == Status.ACCEPTED


def test_the_agent_on_the_call_dispatches_but_a_department_cannot(org):
    from hotline.errors import NotFound

    ticket = make_ticket(org, Status.PENDING_DISPATCH)
    # A department does not even see what waits for dispatch.
    with pytest.raises(NotFound):
        services.ticket_dispatch(ticket_id=ticket.id, actor=org.handler, lead_department_id=org.bureau.id)
    dispatched = services.ticket_dispatch(ticket_id=ticket.id, actor=org.agent, lead_department_id=org.bureau.id)
    assert dispatched.status == Status.DISPATCHED


def test_dispatch_refuses_a_department_that_does_not_take_tickets(org):
    from hotline.errors import ApplicationError

    ticket = make_ticket(org, Status.PENDING_DISPATCH)
    with pytest.raises(ApplicationError) as refused:
        services.ticket_dispatch(ticket_id=ticket.id, actor=org.dispatcher, lead_department_id=org.centre.id)
    assert refused.value.code == "invalid_department"
    with pytest.raises(ApplicationError) as both:
        services.ticket_dispatch(
            ticket_id=ticket.id,
            actor=org.dispatcher,
            lead_department_id=org.bureau.id,
            assisting_department_ids=[org.bureau.id],
        )
    assert both.value.code == "lead_also_assisting"


def test_an_agent_merges_a_repeat_call_into_a_ticket_another_agent_took(org):
    first = make_ticket(org, Status.DISPATCHED, agent=org.other_agent)
    repeat = make_ticket(org, Status.DRAFT, agent=org.agent)
    merged = services.ticket_merge(ticket_id=repeat.id, actor=org.agent, into_ticket_id=first.id)
    assert merged.status == Status.MERGED
    assert merged.merged_into_id == first.id


def test_nobody_else_sees_or_merges_into_an_agents_draft(org):
    draft = make_ticket(org, Status.DRAFT, agent=org.other_agent)
    repeat = make_ticket(org, Status.PENDING_DISPATCH, agent=org.agent)
    with pytest.raises(NotFound):
        services.ticket_merge(ticket_id=repeat.id, actor=org.agent, into_ticket_id=draft.id)


@pytest.mark.parametrize("leave", ["return", "reassign"])
def test_a_pending_extension_lapses_when_the_ticket_leaves_the_department(org, leave):
    from ticketing.models import ExtensionStatus

    ticket = make_ticket(org, Status.ACCEPTED)
    services.ticket_request_extension(ticket_id=ticket.id, actor=org.handler, working_days=3, reason="需勘查")
    if leave == "return":
        services.ticket_return(ticket_id=ticket.id, actor=org.handler, reason="不属于本单位")
    else:
        services.ticket_reassign(
            ticket_id=ticket.id, actor=org.dispatcher, lead_department_id=org.other_bureau.id, reason="职责调整"
        )
    request = ticket.extensions.get()
    assert request.status == ExtensionStatus.REJECTED
    event = ticket.events.latest("id")
    assert event.kind == leave
    assert event.data["lapsed_extension"] == request.id
    if leave == "reassign":
        # The new department may ask for its own extension.
        services.ticket_accept(ticket_id=ticket.id, actor=org.other_handler)
        services.ticket_request_extension(ticket_id=ticket.id, actor=org.other_handler, working_days=2, reason="核实")
        assert ticket.extensions.filter(status=ExtensionStatus.PENDING).count() == 1
