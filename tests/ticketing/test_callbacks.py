"""Callback (回访): the task a reply opens, an agent's call (claim, record, unreachable, release), the citizen's
own rating online, the list, the page, and the races between them (PostgreSQL)."""

from datetime import datetime
from typing import Any

import pytest
from django.test import Client

from hotline import clock
from hotline.errors import ApplicationError, Conflict, NotPermitted
from tests.helpers import make_ticket
from tests.races import needs_postgres, race
from ticketing import callbacks, services
from ticketing.calendar import TZ
from ticketing.models import CallbackMethod, CallbackTask, Ticket, TicketEvent
from ticketing.selectors import working_calendar
from ticketing.workflow import Status

# A Friday: two working days later is the Tuesday after the weekend.
FRIDAY = datetime(2025, 6, 13, 10, 0, tzinfo=TZ)
TUESDAY = datetime(2025, 6, 17, 9, 0, tzinfo=TZ)
PHONE = "13812345678"


def in_callback(org, **overrides: Any) -> Ticket:  # type: ignore[no-untyped-def]
    return make_ticket(org, Status.CALLBACK, **overrides)


def task_of(ticket: Ticket) -> CallbackTask:
    return CallbackTask.objects.get(ticket=ticket, status__in=["pending", "calling"])


def callback_trail(ticket: Ticket) -> list[tuple[str, Any]]:
    return [
        (e.data["action"], e.data["method"])
        for e in TicketEvent.objects.filter(ticket=ticket, kind="callback").order_by("id")
    ]


def other_code(code: str) -> str:
    return "000000" if code != "000000" else "111111"


# --- the task a reply opens ------------------------------------------------------------------------------


def test_approving_the_reply_opens_an_agent_task_due_in_working_days(org):
    with clock.frozen(FRIDAY):
        ticket = in_callback(org)
    task = task_of(ticket)
    assert (task.method, task.status, task.attempts, task.assigned_to) == ("agent", "pending", 0, None)
    assert task.created_at == FRIDAY
    assert task.due_at == datetime(2025, 6, 17, 10, 0, tzinfo=TZ)  # Friday + Monday + Tuesday morning
    approved = TicketEvent.objects.get(ticket=ticket, kind="approve_reply")
    assert approved.data["callback"] == {"task": task.id, "method": "agent"}


def test_the_default_method_may_be_the_automated_caller_unless_there_is_no_number(org, settings):
    settings.CALLBACK_DEFAULT_METHOD = "voice"
    assert task_of(in_callback(org)).method == CallbackMethod.VOICE
    assert task_of(in_callback(org, caller_phone="")).method == CallbackMethod.AGENT
    settings.CALLBACK_DEFAULT_METHOD = "robot"
    ticket = make_ticket(org, Status.REPLIED)
    with pytest.raises(ApplicationError) as refused:
        services.ticket_approve_reply(ticket_id=ticket.id, actor=org.dispatcher)
    assert refused.value.code == "callback_misconfigured"
    ticket.refresh_from_db()
    assert ticket.status == Status.REPLIED and not CallbackTask.objects.filter(ticket=ticket).exists()


# --- an agent's call ---------------------------------------------------------------------------------------


def test_a_claimed_task_belongs_to_one_agent(org):
    task = task_of(in_callback(org))
    claimed = callbacks.callback_claim(task_id=task.id, actor=org.agent)
    assert (claimed.status, claimed.assigned_to, claimed.started_at is not None) == ("calling", org.agent, True)
    with pytest.raises(Conflict) as second:
        callbacks.callback_claim(task_id=task.id, actor=org.other_agent)
    assert second.value.code == "callback_already_claimed" and second.value.status_code == 409
    with pytest.raises(NotPermitted):
        callbacks.callback_claim(task_id=task.id, actor=org.handler)
    # Only the holder records; someone else first has to take it.
    with pytest.raises(Conflict) as not_theirs:
        callbacks.callback_record(task_id=task.id, actor=org.other_agent, satisfaction="satisfied")
    assert not_theirs.value.code == "callback_not_claimed"


@pytest.mark.parametrize("satisfaction", ["satisfied", "fairly_satisfied"])
def test_a_satisfied_citizen_closes_the_ticket(org, satisfaction):
    ticket = in_callback(org)
    task = task_of(ticket)
    callbacks.callback_claim(task_id=task.id, actor=org.agent)
    callbacks.callback_record(task_id=task.id, actor=org.agent, satisfaction=satisfaction, comment=" 很及时 ")
    done = CallbackTask.objects.get(pk=task.pk)
    ticket.refresh_from_db()
    assert (ticket.status, ticket.satisfaction, ticket.satisfaction_comment) == ("closed", satisfaction, "很及时")
    assert (done.status, done.satisfaction, done.comment, done.finished_by, done.attempts) == (
        "done",
        satisfaction,
        "很及时",
        org.agent,
        1,
    )
    assert callback_trail(ticket) == [("claimed", "agent"), ("answered", "agent")]
    closed = TicketEvent.objects.get(ticket=ticket, kind="close")
    assert closed.actor == org.agent and closed.data["satisfaction"] == satisfaction


def test_dissatisfaction_reopens_to_the_same_department_with_fresh_deadlines_and_a_new_callback(org):
    with clock.frozen(FRIDAY):
        ticket = in_callback(org)
    task = task_of(ticket)
    callbacks.callback_claim(task_id=task.id, actor=org.agent)
    with pytest.raises(ApplicationError) as no_reason:
        callbacks.callback_record(task_id=task.id, actor=org.agent, satisfaction="dissatisfied", comment="  ")
    assert no_reason.value.code == "required"
    task.refresh_from_db()
    assert task.status == "calling"  # nothing lost: the agent can record again

    with clock.frozen(TUESDAY):
        callbacks.callback_record(
            task_id=task.id, actor=org.agent, satisfaction="dissatisfied", comment="夜间施工仍在继续"
        )
    ticket.refresh_from_db()
    calendar = working_calendar()
    assert ticket.status == Status.DISPATCHED and ticket.lead_department == org.bureau
    assert (ticket.satisfaction, ticket.satisfaction_comment, ticket.reopen_count) == (
        "dissatisfied",
        "夜间施工仍在继续",
        1,
    )
    assert ticket.dispatched_at == TUESDAY
    assert ticket.accept_due_at == calendar.add(TUESDAY, 1, "working_days") == datetime(2025, 6, 18, 9, 0, tzinfo=TZ)
    assert ticket.reply_due_at == calendar.add(TUESDAY, 5, "working_days") == datetime(2025, 6, 24, 9, 0, tzinfo=TZ)
    assert ticket.accepted_at is None and ticket.replied_at is None
    reopened = TicketEvent.objects.get(ticket=ticket, kind="reopen")
    assert reopened.actor == org.agent and reopened.data["department"] == org.bureau.id
    assert not CallbackTask.objects.filter(ticket=ticket, status__in=["pending", "calling"]).exists()

    # The department handles it again; the new reply gets a callback of its own.
    services.ticket_accept(ticket_id=ticket.id, actor=org.handler)
    services.ticket_reply(ticket_id=ticket.id, actor=org.handler, reply_text="已停工整改。", result="solved")
    services.ticket_approve_reply(ticket_id=ticket.id, actor=org.dispatcher)
    again = task_of(ticket)
    assert again.id != task.id and (again.status, again.attempts) == ("pending", 0)
    assert list(CallbackTask.objects.filter(ticket=ticket).order_by("id").values_list("status", flat=True)) == [
        "done",
        "pending",
    ]


def test_three_calls_nobody_answers_close_the_ticket_as_unreachable(org, settings):
    settings.CALLBACK_MAX_ATTEMPTS = 3
    ticket = in_callback(org)
    task = task_of(ticket)
    for attempt in (1, 2):
        callbacks.callback_claim(task_id=task.id, actor=org.agent)
        left = callbacks.callback_unreachable(task_id=task.id, actor=org.agent)
        assert (left.status, left.attempts, left.assigned_to) == ("pending", attempt, None)
        ticket.refresh_from_db()
        assert ticket.status == Status.CALLBACK
    callbacks.callback_claim(task_id=task.id, actor=org.other_agent)
    last = callbacks.callback_unreachable(task_id=task.id, actor=org.other_agent)
    assert (last.status, last.attempts, last.finished_by) == ("unreachable", 3, org.other_agent)
    ticket.refresh_from_db()
    assert (ticket.status, ticket.satisfaction) == (Status.CLOSED, "")
    closed = TicketEvent.objects.get(ticket=ticket, kind="close")
    assert closed.data["unreachable"] is True
    unanswered = TicketEvent.objects.filter(ticket=ticket, kind="callback", data__action="unanswered")
    assert [e.data["final"] for e in unanswered.order_by("id")] == [False, False, True]


def test_a_claimed_task_goes_back_by_its_holder_or_a_supervisor(org):
    task = task_of(in_callback(org))
    callbacks.callback_claim(task_id=task.id, actor=org.agent)
    with pytest.raises(NotPermitted):
        callbacks.callback_release(task_id=task.id, actor=org.other_agent)
    released = callbacks.callback_release(task_id=task.id, actor=org.supervisor)
    assert (released.status, released.assigned_to) == ("pending", None)
    callbacks.callback_claim(task_id=task.id, actor=org.other_agent)
    assert callbacks.callback_release(task_id=task.id, actor=org.other_agent).status == "pending"
    with pytest.raises(Conflict):
        callbacks.callback_release(task_id=task.id, actor=org.other_agent)


def test_closing_the_ticket_directly_cancels_its_callback_task(org):
    ticket = in_callback(org)
    task = task_of(ticket)
    services.ticket_close(ticket_id=ticket.id, actor=org.supervisor, satisfaction="satisfied")
    task.refresh_from_db()
    assert (task.status, task.finished_by) == ("cancelled", org.supervisor)
    with pytest.raises(Conflict) as finished:
        callbacks.callback_claim(task_id=task.id, actor=org.agent)
    assert finished.value.code == "callback_finished"


def test_voice_tasks_are_not_claimed_by_agents_and_the_voice_caller_answers_them(org, settings):
    settings.CALLBACK_DEFAULT_METHOD = "voice"
    ticket = in_callback(org)
    task = task_of(ticket)
    with pytest.raises(Conflict) as refused:
        callbacks.callback_claim(task_id=task.id, actor=org.agent)
    assert refused.value.code == "not_agent_task"
    with pytest.raises(Conflict):
        callbacks.callback_record(task_id=task.id, actor=None, satisfaction="satisfied")  # not dialled yet
    dialled = callbacks.callback_voice_dial(task_id=task.id)
    assert (dialled.status, dialled.attempts) == ("calling", 1)
    with pytest.raises(Conflict):
        callbacks.callback_voice_dial(task_id=task.id)  # a second caller finds it taken
    callbacks.callback_voice_requeue(task_id=task.id, reason="pbx_unavailable")
    task.refresh_from_db()
    assert (task.status, task.attempts) == ("pending", 0)  # the citizen was never called
    callbacks.callback_voice_dial(task_id=task.id)
    callbacks.callback_record(task_id=task.id, actor=None, satisfaction="satisfied", comment="语音回访按键：满意")
    ticket.refresh_from_db()
    assert ticket.status == Status.CLOSED
    closed = TicketEvent.objects.get(ticket=ticket, kind="close")
    assert closed.actor is None
    assert callback_trail(ticket) == [
        ("dialled", "voice"),
        ("requeued", "voice"),
        ("dialled", "voice"),
        ("answered", "voice"),
    ]


# --- the citizen's own rating ------------------------------------------------------------------------------

RATING = "/api/v1/public/tickets/{}/rating/"


def test_the_citizen_rates_online_and_the_agents_task_is_cancelled(org, api):
    ticket = in_callback(org)
    task = task_of(ticket)
    callbacks.callback_claim(task_id=task.id, actor=org.agent)
    response = api.post(
        RATING.format(ticket.number),
        {"query_code": ticket.query_code, "satisfaction": "fairly_satisfied", "comment": "还行"},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert response.json() == {
        "number": ticket.number,
        "status": "closed",
        "status_display": "已办结",
        "satisfaction": "fairly_satisfied",
    }
    ticket.refresh_from_db()
    assert (ticket.status, ticket.satisfaction, ticket.satisfaction_comment) == ("closed", "fairly_satisfied", "还行")
    task.refresh_from_db()
    assert task.status == "cancelled"
    public = CallbackTask.objects.get(ticket=ticket, method="public")
    assert (public.status, public.satisfaction, public.finished_by) == ("done", "fairly_satisfied", None)
    answered = TicketEvent.objects.get(ticket=ticket, kind="callback", data__action="answered")
    assert answered.actor is None and answered.data["method"] == "public"
    assert answered.data["cancelled"] == [task.id]
    assert TicketEvent.objects.get(ticket=ticket, kind="close").actor is None
    # The agent who was about to call finds the callback finished.
    with pytest.raises(Conflict):
        callbacks.callback_record(task_id=task.id, actor=org.agent, satisfaction="satisfied")


def test_a_dissatisfied_rating_needs_a_reason_and_reopens(org, api):
    ticket = in_callback(org)
    url = RATING.format(ticket.number)
    missing = api.post(url, {"query_code": ticket.query_code, "satisfaction": "dissatisfied"}, format="json")
    assert missing.status_code == 400 and missing.json()["code"] == "required"
    ticket.refresh_from_db()
    assert ticket.status == Status.CALLBACK and task_of(ticket).status == "pending"
    body = {"query_code": ticket.query_code, "satisfaction": "dissatisfied", "comment": "路灯还是不亮"}
    reopened = api.post(url, body, format="json")
    assert reopened.status_code == 200 and reopened.json()["status"] == "dispatched"
    ticket.refresh_from_db()
    assert (ticket.status, ticket.lead_department, ticket.satisfaction_comment) == (
        Status.DISPATCHED,
        org.bureau,
        "路灯还是不亮",
    )


def test_a_wrong_code_and_a_wrong_number_look_the_same_and_a_closed_ticket_cannot_be_rated(org, api):
    ticket = in_callback(org)
    draft = make_ticket(org, Status.DRAFT)
    wrong_code = api.post(
        RATING.format(ticket.number),
        {"query_code": other_code(ticket.query_code), "satisfaction": "satisfied"},
        format="json",
    )
    wrong_number = api.post(
        RATING.format("12345-20000101-999999"), {"query_code": ticket.query_code, "satisfaction": "satisfied"}
    )
    not_public = api.post(
        RATING.format(draft.number), {"query_code": draft.query_code, "satisfaction": "satisfied"}, format="json"
    )
    assert wrong_code.status_code == wrong_number.status_code == not_public.status_code == 404
    assert wrong_code.json() == wrong_number.json() == not_public.json()
    ticket.refresh_from_db()
    assert ticket.status == Status.CALLBACK

    closed = make_ticket(org, Status.CLOSED)
    late = api.post(RATING.format(closed.number), {"query_code": closed.query_code, "satisfaction": "dissatisfied"})
    assert late.status_code == 409 and late.json()["code"] == "not_awaiting_rating"
    extra = api.post(
        RATING.format(ticket.number),
        {"query_code": ticket.query_code, "satisfaction": "satisfied", "phone": PHONE},
        format="json",
    )
    assert extra.status_code == 400


def test_guessing_query_codes_is_throttled_per_address_and_per_ticket(org, api, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"public_rating": "3/hour", "public_rating_ticket": "5/day"},
    }
    ticket = in_callback(org)
    url = RATING.format(ticket.number)
    guesses = [f"{n:06d}" for n in range(10) if f"{n:06d}" != ticket.query_code]
    codes = [api.post(url, {"query_code": g, "satisfaction": "satisfied"}).status_code for g in guesses[:4]]
    assert codes == [404, 404, 404, 429]
    # Even the right code waits now: the limit does not know which guess is right.
    assert api.post(url, {"query_code": ticket.query_code, "satisfaction": "satisfied"}).status_code == 429

    # Many addresses guessing one ticket are stopped by the ticket's own limit.
    target = in_callback(org)
    wrong = other_code(target.query_code)
    per_ticket = [
        api.post(
            RATING.format(target.number), {"query_code": wrong, "satisfaction": "satisfied"}, REMOTE_ADDR=f"10.0.0.{n}"
        ).status_code
        for n in range(6)
    ]
    assert per_ticket == [404] * 5 + [429]
    other = in_callback(org)
    fine = api.post(
        RATING.format(other.number),
        {"query_code": other.query_code, "satisfaction": "satisfied"},
        REMOTE_ADDR="10.0.1.1",
    )
    assert fine.status_code == 200
    ticket.refresh_from_db()
    assert ticket.status == Status.CALLBACK


# --- the API for agents ------------------------------------------------------------------------------------

LIST = "/api/v1/callbacks/"


def test_the_list_masks_the_callers_phone_and_revealing_it_is_on_the_trail(org, api_as, django_assert_num_queries):
    tickets = [in_callback(org) for _ in range(3)]
    confidential = in_callback(org, caller_confidential=True)
    api = api_as(org.agent)
    with django_assert_num_queries(2):  # the count and the page, nothing per row
        response = api.get(LIST)
    assert response.status_code == 200
    rows = response.json()["results"]
    assert len(rows) == 4 and PHONE not in response.content.decode()
    by_ticket = {row["ticket"]["id"]: row for row in rows}
    assert by_ticket[tickets[0].id]["caller_phone"] == "138****5678"
    assert by_ticket[tickets[0].id]["caller_name"] == "张*"
    assert by_ticket[tickets[0].id]["ticket"]["reply_text"] == "已责令停止夜间施工。"
    assert by_ticket[confidential.id]["caller_phone"] == ""

    revealed = api.post(f"/api/v1/tickets/{tickets[0].id}/contact/")
    assert revealed.json()["caller_phone"] == PHONE
    assert TicketEvent.objects.filter(ticket=tickets[0], kind="contact_viewed", actor=org.agent).exists()


def test_claim_record_and_unreachable_over_the_api(org, api_as):
    first, second = in_callback(org), in_callback(org)
    agent = api_as(org.agent)
    task = task_of(first)
    claimed = agent.post(f"{LIST}{task.id}/claim/", {}, format="json")
    assert claimed.status_code == 200 and claimed.json()["status"] == "calling" and claimed.json()["mine"]
    mine = agent.get(LIST, {"mine": "1"}).json()["results"]
    assert [row["id"] for row in mine] == [task.id]

    other = api_as(org.other_agent)
    taken = other.post(f"{LIST}{task.id}/claim/", {}, format="json")
    assert taken.status_code == 409 and taken.json()["code"] == "callback_already_claimed"
    bad = agent.post(f"{LIST}{task.id}/record/", {"satisfaction": "happy"}, format="json")
    assert bad.status_code == 400

    agent = api_as(org.agent)
    recorded = agent.post(
        f"{LIST}{task.id}/record/", {"satisfaction": "dissatisfied", "comment": "没有人来处理"}, format="json"
    )
    assert recorded.status_code == 200 and recorded.json()["status"] == "done"
    first.refresh_from_db()
    assert first.status == Status.DISPATCHED

    other_task = task_of(second)
    agent.post(f"{LIST}{other_task.id}/claim/", {}, format="json")
    missed = agent.post(f"{LIST}{other_task.id}/unreachable/", {}, format="json")
    assert missed.status_code == 200 and (missed.json()["status"], missed.json()["attempts"]) == ("pending", 1)
    done = agent.get(LIST, {"status": ["done", "pending"]}).json()["results"]
    assert {row["id"] for row in done} == {task.id, other_task.id}


def test_departments_have_no_callback_list(org, api_as):
    in_callback(org)
    assert api_as(org.handler).get(LIST).status_code == 403
    assert api_as(org.lead).post(f"{LIST}1/claim/", {}, format="json").status_code == 403


# --- the page ----------------------------------------------------------------------------------------------


def test_the_page_shows_an_agent_the_pending_calls_with_masked_numbers(org):
    ticket = in_callback(org)
    browser = Client()
    browser.force_login(org.agent)
    page = browser.get("/callbacks/")
    assert page.status_code == 200
    html = page.content.decode()
    assert ticket.number in html and "138****5678" in html and PHONE not in html
    assert "已责令停止夜间施工。" in html and 'data-action="claim"' in html
    assert "ticketing/callbacks.js" in html

    callbacks.callback_claim(task_id=task_of(ticket).id, actor=org.agent)
    mine = browser.get("/callbacks/?view=mine").content.decode()
    assert 'data-action="record"' in mine and 'data-action="reveal"' in mine


def test_the_page_is_refused_to_a_department_handler_and_asks_strangers_to_sign_in(org):
    browser = Client()
    assert browser.get("/callbacks/").status_code == 302
    browser.force_login(org.handler)
    assert browser.get("/callbacks/").status_code == 403


# --- races (PostgreSQL) ------------------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@needs_postgres
def test_two_agents_claiming_at_once_one_wins(org):
    for _round in range(5):
        task = task_of(in_callback(org))
        results = race(
            [
                lambda task=task: callbacks.callback_claim(task_id=task.id, actor=org.agent),
                lambda task=task: callbacks.callback_claim(task_id=task.id, actor=org.other_agent),
            ]
        )
        winners = [r for r in results if isinstance(r, CallbackTask)]
        losers = [r for r in results if isinstance(r, Conflict)]
        assert len(winners) == 1 and len(losers) == 1, results
        assert losers[0].code == "callback_already_claimed"
        task.refresh_from_db()
        assert task.status == "calling" and task.assigned_to_id == winners[0].assigned_to_id
        assert (
            TicketEvent.objects.filter(ticket_id=task.ticket_id, kind="callback", data__action="claimed").count() == 1
        )


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@needs_postgres
def test_a_rating_and_an_agents_record_at_once_answer_the_ticket_once(org):
    for _round in range(3):
        ticket = in_callback(org)
        task = task_of(ticket)
        callbacks.callback_claim(task_id=task.id, actor=org.agent)
        results = race(
            [
                lambda ticket=ticket: callbacks.callback_public_rate(
                    number=ticket.number, query_code=ticket.query_code, satisfaction="satisfied"
                ),
                lambda task=task: callbacks.callback_record(
                    task_id=task.id, actor=org.agent, satisfaction="dissatisfied", comment="不满意"
                ),
            ]
        )
        assert sum(isinstance(r, CallbackTask) for r in results) == 1, results
        assert sum(isinstance(r, ApplicationError) for r in results) == 1, results
        ticket.refresh_from_db()
        assert ticket.status in (Status.CLOSED, Status.DISPATCHED)
        answered = TicketEvent.objects.filter(ticket=ticket, kind="callback", data__action="answered")
        assert answered.count() == 1
        assert TicketEvent.objects.filter(ticket=ticket, kind__in=["close", "reopen"]).count() == 1
