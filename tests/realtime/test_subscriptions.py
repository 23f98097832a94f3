"""Who may subscribe to what, through the real websocket stack (auth middleware, routing, consumers).

Every message received is also parsed with its strict schema (`events.parse`). To show that a socket did
NOT receive an event, a test makes that event first and then one the socket must receive: the first
message that arrives must be the second one (messages of one channel arrive in order).
"""

from collections.abc import Callable
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings as django_settings
from django.test import Client as HttpClient

from hotline.realtime import events as rt
from hotline.realtime.consumers import RealtimeConsumer
from tests.helpers import make_ticket
from ticketing import services
from ticketing.consumers import StaffConsumer
from ticketing.models import TicketEvent, User
from ticketing.workflow import Status

ALLOWED_ORIGIN = (b"origin", b"http://127.0.0.1:8000")
FOREIGN_ORIGIN = (b"origin", b"https://evil.example")
NO_SUCH_ID = 987_654


def run(function: Callable[..., Any]) -> Callable[..., Any]:
    return sync_to_async(function)


async def receive(client: Any) -> dict[str, Any]:
    """The next message, which must be valid against its schema."""
    message = await client.receive()
    rt.parse(message)
    return message


async def caught_up(client: Any) -> dict[str, Any]:
    missed, done = await client.until_caught_up()
    assert isinstance(rt.parse(done), rt.CatchupComplete)
    for message in missed:
        rt.parse(message)
    return done


async def refusal(client: Any) -> int:
    """The close code of a refused connection, after checking the error message sent before it."""
    error = await receive(client)
    code = await client.close_code()
    assert error["type"] == "error" and error["code"] == str(code)
    return code


async def dispatched_to(org, department) -> Any:  # type: ignore[no-untyped-def]
    return await run(make_ticket)(org, Status.DISPATCHED, department=department)


# --- departments -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("user", "department"),
    [
        ("handler", "other_bureau"),
        ("unit_handler", "bureau"),
        ("unit_handler", "other_bureau"),
        ("street_handler", "district_government"),
        ("lead", "other_bureau"),
        ("district_lead", "bureau"),
    ],
    ids=["handler-other", "unit-handler-parent", "unit-handler-other", "street-parent", "lead-other", "lead-foreign"],
)
async def test_department_members_cannot_subscribe_outside_their_reach(org, connect, user, department):
    client = await connect(f"/ws/departments/{getattr(org, department).id}/", user=getattr(org, user))
    assert await refusal(client) == 4403


async def test_a_sub_unit_handler_gets_only_its_unit(org, connect):
    screen = await connect(f"/ws/departments/{org.bureau_unit.id}/", user=org.unit_handler)
    await caught_up(screen)
    await dispatched_to(org, org.bureau)
    await dispatched_to(org, org.other_bureau)
    mine = await dispatched_to(org, org.bureau_unit)

    message = await receive(screen)
    assert (message["ticket_id"], message["transition"]) == (mine.id, "dispatch")
    assert await screen.nothing_more()


async def test_a_lead_gets_its_subtree_and_a_plain_handler_of_the_parent_does_not(org, connect):
    lead = await connect(f"/ws/departments/{org.bureau.id}/", user=org.lead)
    handler = await connect(f"/ws/departments/{org.bureau.id}/", user=org.handler)
    done = await caught_up(lead)
    await caught_up(handler)
    unit_ticket = await dispatched_to(org, org.bureau_unit)
    own_ticket = await dispatched_to(org, org.bureau)

    assert [(await receive(lead))["ticket_id"] for _ in range(2)] == [unit_ticket.id, own_ticket.id]
    assert (await receive(handler))["ticket_id"] == own_ticket.id
    assert await lead.nothing_more() and await handler.nothing_more()

    # Catch-up follows the same rule.
    lead_again = await connect(f"/ws/departments/{org.bureau.id}/?after={done['last_event_id']}", user=org.lead)
    handler_again = await connect(f"/ws/departments/{org.bureau.id}/?after={done['last_event_id']}", user=org.handler)
    lead_missed, _ = await lead_again.until_caught_up()
    handler_missed, _ = await handler_again.until_caught_up()
    assert {m["ticket_id"] for m in lead_missed} == {unit_ticket.id, own_ticket.id}
    assert {m["ticket_id"] for m in handler_missed} == {own_ticket.id}


@pytest.mark.parametrize("user", ["supervisor", "administrator"])
async def test_supervision_may_watch_any_department_with_its_subtree(org, connect, user):
    screen = await connect(f"/ws/departments/{org.bureau.id}/", user=getattr(org, user))
    await caught_up(screen)
    await dispatched_to(org, org.other_bureau)
    unit_ticket = await dispatched_to(org, org.bureau_unit)
    assert (await receive(screen))["ticket_id"] == unit_ticket.id


@pytest.mark.parametrize("user", ["handler", "supervisor"])
async def test_an_unknown_department_is_not_found(org, connect, user):
    client = await connect(f"/ws/departments/{NO_SUCH_ID}/", user=getattr(org, user))
    assert await refusal(client) == 4404


# --- the agent and supervisor boards ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/ws/supervisor/", "/ws/departments/{bureau}/", "/ws/departments/{centre}/"])
async def test_an_agent_cannot_use_the_supervisor_or_department_boards(org, connect, path):
    client = await connect(path.format(bureau=org.bureau.id, centre=org.centre.id), user=org.agent)
    assert await refusal(client) == 4403


@pytest.mark.parametrize("user", ["supervisor", "dispatcher", "administrator"])
async def test_the_board_roles_use_the_supervisor_board(org, connect, user):
    board = await connect("/ws/supervisor/", user=getattr(org, user))
    await caught_up(board)
    ticket = await run(make_ticket)(org, Status.PENDING_DISPATCH)
    message = await receive(board)
    assert (message["type"], message["ticket_id"]) == ("ticket.created", ticket.id)


# --- one ticket ---------------------------------------------------------------------------------------------


async def test_a_ticket_the_user_may_not_see_is_not_found(org, connect):
    bureau_ticket = await dispatched_to(org, org.bureau)
    draft = await run(make_ticket)(org, Status.DRAFT)
    cases = [
        (org.other_handler, bureau_ticket.id),
        (org.unit_handler, bureau_ticket.id),
        (org.other_agent, draft.id),
        (org.supervisor, NO_SUCH_ID),
    ]
    codes = [await refusal(await connect(f"/ws/tickets/{ticket_id}/", user=user)) for user, ticket_id in cases]
    assert codes == [4404] * len(cases)


async def test_a_visible_ticket_streams_that_ticket_only(org, connect):
    watched = await dispatched_to(org, org.bureau)
    neighbour = await dispatched_to(org, org.bureau)
    screen = await connect(f"/ws/tickets/{watched.id}/", user=org.handler)
    await caught_up(screen)
    await run(services.ticket_note_add)(ticket_id=neighbour.id, actor=org.handler, text="隔壁工单的备注")
    await run(services.ticket_accept)(ticket_id=neighbour.id, actor=org.handler)
    await run(services.ticket_note_add)(ticket_id=watched.id, actor=org.handler, text="本工单的备注")

    message = await receive(screen)
    assert (message["type"], message["ticket_id"], message["text"]) == ("ticket.note", watched.id, "本工单的备注")
    assert await screen.nothing_more()


# --- authentication and origin ------------------------------------------------------------------------------


async def _session_cookie(user: User) -> tuple[bytes, bytes]:
    browser = HttpClient()
    await run(browser.force_login)(user)
    session = browser.cookies[django_settings.SESSION_COOKIE_NAME].value
    return (b"cookie", f"{django_settings.SESSION_COOKIE_NAME}={session}".encode())


async def test_no_credentials_at_all_is_unauthenticated(org, connect):
    assert await refusal(await connect("/ws/supervisor/")) == 4401
    # A browser page of ours (allowed Origin) without a session is not signed in either.
    assert await refusal(await connect("/ws/supervisor/", headers=[ALLOWED_ORIGIN])) == 4401


@pytest.mark.parametrize("header", [b"Token not-a-real-key", b"Token ", b"Bearer abc", b"garbage"])
async def test_a_bad_token_is_unauthenticated(org, connect, header):
    client = await connect("/ws/supervisor/", headers=[(b"authorization", header)])
    assert await refusal(client) == 4401


async def test_a_token_of_a_deactivated_user_is_unauthenticated(org, connect):
    from rest_framework.authtoken.models import Token

    token = await run(Token.objects.create)(user=org.supervisor)
    org.supervisor.is_active = False
    await run(org.supervisor.save)(update_fields=["is_active"])
    client = await connect("/ws/supervisor/", headers=[(b"authorization", f"Token {token.key}".encode())])
    assert await refusal(client) == 4401


async def test_a_session_cookie_needs_an_origin(org, connect):
    cookie = await _session_cookie(org.supervisor)
    assert await refusal(await connect("/ws/supervisor/", headers=[cookie])) == 4401
    # The same cookie from one of our pages is signed in: the refusal above was the missing Origin.
    page = await connect("/ws/supervisor/", headers=[cookie, ALLOWED_ORIGIN])
    await caught_up(page)
    assert await refusal(await connect("/ws/supervisor/", headers=[cookie, FOREIGN_ORIGIN])) == 4403


async def test_a_token_connection_with_a_foreign_origin_is_forbidden(org, connect):
    client = await connect("/ws/supervisor/", user=org.supervisor, headers=[FOREIGN_ORIGIN])
    assert await refusal(client) == 4403


async def test_a_token_connection_with_an_allowed_origin_is_accepted(org, connect):
    client = await connect("/ws/supervisor/", user=org.supervisor, headers=[ALLOWED_ORIGIN])
    await caught_up(client)
    ticket = await run(make_ticket)(org, Status.PENDING_DISPATCH)
    assert (await receive(client))["ticket_id"] == ticket.id


@pytest.mark.parametrize("after", ["abc", "-1", "1.5", "1e3", "９", "9" * 19])
async def test_a_malformed_after_is_a_bad_request(org, connect, after):
    client = await connect(f"/ws/supervisor/?after={after}", user=org.supervisor)
    assert await refusal(client) == 4400


# --- the connection itself -----------------------------------------------------------------------------------


async def test_ping_gets_pong(org, connect):
    client = await connect("/ws/supervisor/", user=org.supervisor)
    await caught_up(client)
    await client.communicator.send_json_to({"type": "ping"})
    assert isinstance(rt.parse(await client.receive()), rt.Pong)


async def test_an_unknown_client_message_gets_an_error_and_the_connection_stays_open(org, connect):
    client = await connect("/ws/supervisor/", user=org.supervisor)
    await caught_up(client)
    await client.communicator.send_json_to({"type": "subscribe", "group": "public.ticket.1"})
    error = await receive(client)
    assert (error["type"], error["code"]) == ("error", "unknown_message")
    await client.communicator.send_to(text_data="not json")
    assert (await receive(client))["code"] == "unknown_message"

    await client.communicator.send_json_to({"type": "ping"})
    assert (await receive(client))["type"] == "pong"
    ticket = await run(make_ticket)(org, Status.PENDING_DISPATCH)
    assert (await receive(client))["ticket_id"] == ticket.id


async def test_heartbeats_arrive_at_the_configured_interval(org, connect, settings):
    settings.HOTLINE_WS_HEARTBEAT_SECONDS = 0.1
    client = await connect("/ws/supervisor/", user=org.supervisor)
    await caught_up(client)
    beats = [rt.parse(await client.receive(timeout=1)) for _ in range(3)]
    assert all(isinstance(beat, rt.Heartbeat) for beat in beats)


async def test_a_truncated_catch_up_is_valid_against_its_schema(org, connect, settings):
    settings.HOTLINE_CATCHUP_LIMIT = 1
    ticket = await dispatched_to(org, org.bureau)
    client = await connect(f"/ws/tickets/{ticket.id}/?after=0", user=org.supervisor)
    missed, done = await client.until_caught_up()
    assert len(missed) == 1 and done["truncated"] is True
    rt.parse(done)


# --- deduplication -----------------------------------------------------------------------------------------


async def test_a_reconnecting_client_never_receives_an_event_twice(org, connect, monkeypatch):
    ticket = await dispatched_to(org, org.bureau)
    screen = await connect(f"/ws/tickets/{ticket.id}/", user=org.supervisor)
    await caught_up(screen)
    await run(services.ticket_accept)(ticket_id=ticket.id, actor=org.handler)
    last_seen = (await receive(screen))["event_id"]
    await screen.disconnect()
    await run(services.ticket_note_add)(ticket_id=ticket.id, actor=org.handler, text="离线期间的备注")

    # The race dedup exists for: an event committed after the socket joined its groups and before its
    # catch-up query reaches the socket twice, in the catch-up and live.
    raced: list[int] = []
    handed_over: list[int | None] = []
    catch_up, deliver = StaffConsumer.catch_up, RealtimeConsumer.deliver

    async def catch_up_after_a_commit(self, after):  # type: ignore[no-untyped-def]
        note = await run(services.ticket_note_add)(ticket_id=ticket.id, actor=org.handler, text="重连期间的备注")
        raced.append(note.id)
        return await catch_up(self, after)

    async def recording_deliver(self, payload):  # type: ignore[no-untyped-def]
        handed_over.append(payload.get("event_id"))
        await deliver(self, payload)

    monkeypatch.setattr(StaffConsumer, "catch_up", catch_up_after_a_commit)
    monkeypatch.setattr(RealtimeConsumer, "deliver", recording_deliver)

    again = await connect(f"/ws/tickets/{ticket.id}/?after={last_seen}", user=org.supervisor)
    missed, done = await again.until_caught_up()
    await run(services.ticket_reply)(ticket_id=ticket.id, actor=org.handler, reply_text="已处理。", result="solved")
    await run(services.ticket_note_add)(ticket_id=ticket.id, actor=org.handler, text="答复后的备注")
    live = [await receive(again) for _ in range(2)]
    assert await again.nothing_more()

    received = [m["event_id"] for m in [*missed, *live]]
    assert len(received) == len(set(received)), received
    assert handed_over.count(raced[0]) == 2, "the raced event should reach the consumer twice"
    assert received.count(raced[0]) == 1
    after_last_seen = await run(list)(
        TicketEvent.objects.filter(ticket=ticket, id__gt=last_seen).order_by("id").values_list("id", flat=True)
    )
    assert [i for i in received if i > last_seen] == after_last_seen
    assert done["last_event_id"] == max(m["event_id"] for m in missed)


# --- the citizen's status page ---------------------------------------------------------------------------------


def _wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


async def test_a_wrong_code_an_unknown_number_and_a_draft_look_the_same(org, connect):
    ticket = await run(make_ticket)(org, Status.PENDING_DISPATCH)
    draft = await run(make_ticket)(org, Status.DRAFT)
    paths = [
        f"/ws/public/tickets/{ticket.number}/?code={_wrong(ticket.query_code)}",
        f"/ws/public/tickets/{ticket.number}/",
        f"/ws/public/tickets/12345-20000101-999999/?code={ticket.query_code}",
        f"/ws/public/tickets/{draft.number}/?code={draft.query_code}",
    ]
    answers = []
    for path in paths:
        client = await connect(path)
        answers.append((await receive(client), await client.close_code()))
    assert answers == [answers[0]] * len(paths)
    assert answers[0][1] == 4404


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for item in value.values() for s in _strings(item)]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    return []


INTERNAL_FIELDS = {
    "actor_id",
    "author_id",
    "created_by_id",
    "data",
    "lead_department_id",
    "ticket_id",
    "text",
    "fields",
    "kind",
    "transition",
}


async def test_the_public_page_gets_public_steps_and_nothing_internal(org, connect):
    ticket = await run(make_ticket)(org, Status.PENDING_DISPATCH)
    page = await connect(f"/ws/public/tickets/{ticket.number}/?code={ticket.query_code}")
    await caught_up(page)
    reply_text = "已责令施工单位停止夜间施工。"
    internal = {
        "note": "内部备注：施工方负责人王五电话13700009999",
        "update": "13900001111",
        "extension": "需要协调城管执法局联合检查",
        "return": "不属于本单位职责范围",
        "reassign": "住建局内部调整分工",
    }

    def handle_it() -> None:
        # Internal: update, note, contact look-up, extension request, return, the reasons of a reassign, reply
        # drafts. Public: dispatch, accept, reassign, the approved reply.
        services.ticket_update(ticket_id=ticket.id, actor=org.agent, changes={"caller_phone": internal["update"]})
        services.ticket_note_add(ticket_id=ticket.id, actor=org.agent, text=internal["note"])
        services.ticket_contact_reveal(ticket_id=ticket.id, actor=org.agent)
        services.ticket_dispatch(ticket_id=ticket.id, actor=org.dispatcher, lead_department_id=org.bureau.id)
        services.ticket_accept(ticket_id=ticket.id, actor=org.handler)
        services.ticket_note_add(ticket_id=ticket.id, actor=org.handler, text=internal["note"])
        services.ticket_contact_reveal(ticket_id=ticket.id, actor=org.handler)
        services.ticket_request_extension(
            ticket_id=ticket.id, actor=org.handler, working_days=3, reason=internal["extension"]
        )
        services.ticket_return(ticket_id=ticket.id, actor=org.handler, reason=internal["return"])
        services.ticket_approve_return(ticket_id=ticket.id, actor=org.dispatcher, note=internal["return"])
        services.ticket_dispatch(ticket_id=ticket.id, actor=org.dispatcher, lead_department_id=org.bureau.id)
        services.ticket_accept(ticket_id=ticket.id, actor=org.handler)
        services.ticket_reassign(
            ticket_id=ticket.id,
            actor=org.dispatcher,
            lead_department_id=org.other_bureau.id,
            reason=internal["reassign"],
        )
        services.ticket_accept(ticket_id=ticket.id, actor=org.other_handler)
        services.ticket_reply(ticket_id=ticket.id, actor=org.other_handler, reply_text=reply_text, result="solved")
        services.ticket_approve_reply(ticket_id=ticket.id, actor=org.dispatcher)

    await run(handle_it)()
    live = [await receive(page) for _ in range(7)]
    assert await page.nothing_more()

    kinds = await run(dict)(TicketEvent.objects.filter(ticket=ticket).values_list("id", "kind"))
    assert [kinds[m["event_id"]] for m in live] == [
        "dispatch",
        "accept",
        "dispatch",
        "accept",
        "reassign",
        "accept",
        "approve_reply",
    ]
    assert [m["step"] for m in live] == [
        "dispatched",
        "accepted",
        "dispatched",
        "accepted",
        "dispatched",
        "accepted",
        "replied",
    ]
    assert [m["department"] for m in live] == [org.bureau.name] * 4 + [org.other_bureau.name] * 3
    assert [m["reply"] for m in live] == [None] * 6 + [reply_text]
    assert live[-1]["status"] == "callback"

    # A page that reconnects from the start gets the same public steps, and the same payloads.
    again = await connect(f"/ws/public/tickets/{ticket.number}/?code={ticket.query_code}&after=0")
    missed, done = await again.until_caught_up()
    assert [m["step"] for m in missed] == ["received", *[m["step"] for m in live]]
    assert missed[1:] == live

    staff = [value for value in vars(org).values() if isinstance(value, User)]
    forbidden = {"张三", "13812345678", *internal.values(), *(u.username for u in staff), *(u.full_name for u in staff)}
    for message in [*live, *missed]:
        assert isinstance(rt.parse(message), rt.PublicTicketUpdate)
        assert set(message) == set(rt.PublicTicketUpdate.model_fields)
        assert not INTERNAL_FIELDS & set(message)
        leaked = {word for word in forbidden for text in _strings(message) if word in text}
        assert not leaked, (leaked, message)
    assert set(done) == {"type", "last_event_id", "count", "truncated"}
    assert done["truncated"] is False
