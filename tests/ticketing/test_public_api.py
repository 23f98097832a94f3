"""The public site's API and pages without a browser: filing a request (consent, challenge, photos, limits),
looking a ticket up (the same answer for a wrong code and an unknown number, limits, the lockout), what the
citizen sees (nothing internal), hostile text kept as it was and shown inert, the rating from the page."""

import json
import time
from datetime import timedelta

import pytest
from channels.testing import WebsocketCommunicator
from django.core import signing
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connections
from django.test import Client

from hotline import clock
from hotline.asgi import websocket_application
from tests.helpers import make_ticket
from ticketing import callbacks, public_guard, services
from ticketing.models import Satisfaction, Ticket, TicketAttachment
from ticketing.workflow import Status, Transition

from .public_helpers import JPEG, PNG, request_fields, solve

CHALLENGE = "/api/v1/public/challenge/"
SUBMIT = "/api/v1/public/tickets/"
STATUS = "/api/v1/public/tickets/{}/"


@pytest.fixture(autouse=True)
def _fresh(settings, tmp_path):  # type: ignore[no-untyped-def]
    settings.MEDIA_ROOT = tmp_path


def limits(settings, **rates: str) -> None:  # type: ignore[no-untyped-def]
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], **rates},
    }


def challenge(api, **extra) -> dict:  # type: ignore[no-untyped-def]
    body = api.get(CHALLENGE, **extra).json()
    return {"challenge_token": body["token"], "challenge_answer": solve(body["question"])}


def submit(api, *, photos=(), answered: dict | None = None, address: str = "127.0.0.1", **overrides):  # type: ignore[no-untyped-def]
    answered = answered if answered is not None else challenge(api, REMOTE_ADDR=address)
    data = {**request_fields(**overrides), **answered}
    if photos:
        data["photos"] = list(photos)
    return api.post(SUBMIT, data, format="multipart", REMOTE_ADDR=address)


def other_code(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


# --- filing a request ----------------------------------------------------------------------------------------


def test_a_citizen_files_a_request_with_photos_and_gets_the_number_and_query_code(org, api):
    response = submit(
        api,
        photos=[
            SimpleUploadedFile("现场1.png", PNG, content_type="image/png"),
            # The type comes from the bytes, not the claim.
            SimpleUploadedFile("现场2.png", JPEG, content_type="image/png"),
        ],
        phone="+86 139-0000-1111",
        category=str(org.category.id),
        region=str(org.district.id),
    )

    assert response.status_code == 201, response.content
    body = response.json()
    ticket = Ticket.objects.get()
    assert body == {
        "number": ticket.number,
        "query_code": ticket.query_code,
        "status": "pending_dispatch",
        "status_display": "已受理，等待转交",
    }
    assert (ticket.channel, ticket.created_by, ticket.caller_phone) == ("web", None, "13900001111")
    assert (ticket.category, ticket.region, ticket.location_text) == (org.category, org.district, "幸福小区东门")
    assert ticket.events.get(kind="created").data["consent"] == "2025-01"
    photos = TicketAttachment.objects.filter(ticket=ticket).order_by("id")
    assert [(p.name, p.content_type, p.uploaded_by) for p in photos] == [
        ("现场1.png", "image/png", None),
        ("现场2.png", "image/jpeg", None),
    ]
    assert response["Cache-Control"] == "no-store"


def test_json_without_photos_is_accepted_too(org, api):
    response = api.post(SUBMIT, {**request_fields(consent=True), **challenge(api)}, format="json")
    assert response.status_code == 201, response.content
    assert Ticket.objects.get().attachments.count() == 0


@pytest.mark.parametrize("consent", [None, "false"])
def test_without_consent_nothing_is_filed(org, api, consent):
    data = {**request_fields(), **challenge(api)}
    if consent is None:
        del data["consent"]
    else:
        data["consent"] = consent
    response = api.post(SUBMIT, data, format="multipart")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert list(body["errors"]) == ["consent"]
    assert body["errors"]["consent"] == ["请阅读并同意个人信息使用说明后再提交。"]
    assert not Ticket.objects.exists()


def test_errors_name_the_field_in_chinese_and_nothing_is_stored(org, api):
    response = submit(api, title="   ", phone="12345", appeal_type="gossip", location="")
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert set(errors) == {"title", "phone", "appeal_type", "location"}
    assert errors["phone"] == ["请填写正确的手机号码，或带区号的固定电话。"]
    # DRF's own messages come in Chinese too.
    assert all(any("\u4e00" <= ch <= "\u9fff" for ch in message) for field in errors.values() for message in field)
    # What only the centre may set is refused by name, not dropped.
    internal = submit(api, urgency="critical", caller_confidential="true")
    assert internal.json()["errors"] == {"caller_confidential": ["未知字段。"], "urgency": ["未知字段。"]}
    assert not Ticket.objects.exists()


def test_the_answers_are_chinese_whatever_the_client_asks_for(org, api):
    data = {**request_fields(title=""), **challenge(api)}
    response = api.post(SUBMIT, data, format="multipart", HTTP_ACCEPT_LANGUAGE="en")
    assert response.json()["errors"] == {"title": ["该字段不能为空。"]}
    assert response["Content-Language"] == "zh-hans"
    page = Client(HTTP_ACCEPT_LANGUAGE="en").post("/public/submit/", {"title": ""})
    assert "该字段是必填项。" in page.content.decode()


def test_a_wrong_answer_uses_the_challenge_up(org, api):
    answered = challenge(api)
    wrong = {**answered, "challenge_answer": str(int(answered["challenge_answer"]) + 1)}
    refused = submit(api, answered=wrong)
    assert refused.status_code == 400
    assert refused.json() == {
        "code": "challenge_wrong",
        "detail": "验证题答案不正确，请重新作答。",
        "field": "challenge_answer",
    }
    # The right answer is no use now: guessing through the 40 possible answers takes 40 challenges.
    assert submit(api, answered=answered).json()["code"] == "challenge_used"
    assert not Ticket.objects.exists()


def test_a_challenge_is_good_for_one_request_only(org, api):
    answered = challenge(api)
    assert submit(api, answered=answered).status_code == 201
    again = submit(api, answered=answered, title="再来一次")
    assert (again.status_code, again.json()["code"]) == (400, "challenge_used")
    assert Ticket.objects.count() == 1


def test_an_expired_or_forged_challenge_is_refused(org, api, settings):
    answered = challenge(api)
    with clock.frozen(clock.now() + timedelta(seconds=settings.PUBLIC_CHALLENGE_SECONDS + 1)):
        expired = submit(api, answered=answered)
    assert expired.json()["code"] == "challenge_expired"
    forged = {**challenge(api), "challenge_token": answered["challenge_token"][:-2] + "xx"}
    assert submit(api, answered=forged).json()["code"] == "challenge_invalid"
    assert not Ticket.objects.exists()


def test_the_challenge_is_arithmetic_in_chinese_and_tells_nothing_of_the_answer(api):
    body = api.get(CHALLENGE).json()
    assert set(body) == {"token", "question", "expires_at", "consent_text"}
    assert body["question"].endswith("等于多少？") and not any(ch.isdigit() for ch in body["question"])
    # The token carries a keyed digest of the answer, never the answer or the numbers of the question.
    payload = signing.loads(body["token"], salt=public_guard.CHALLENGE_SALT)
    assert set(payload) == {"n", "e", "h"}
    assert solve(body["question"]) not in {str(value) for value in payload.values()}


@pytest.mark.parametrize(
    ("name", "data", "declared"),
    [
        ("现场.png", b"%PDF-1.4 not a photo", "image/png"),
        ("现场.png", b"<script>alert(1)</script>", "image/png"),
        ("现场.jpg", b"GIF89a" + b"\x00" * 32, "image/jpeg"),
        ("现场.gif", b"GIF89a" + b"\x00" * 32, "image/gif"),
        ("现场.png", b"", "image/png"),
    ],
)
def test_a_file_that_is_not_a_photo_refuses_the_whole_request(org, api, name, data, declared):
    response = submit(api, photos=[SimpleUploadedFile(name, data, content_type=declared)])
    assert response.status_code == 400, response.content
    assert list(response.json()["errors"]) == ["photos"]
    assert not Ticket.objects.exists() and not TicketAttachment.objects.exists()


def test_more_than_three_photos_or_a_large_one_are_refused(org, api, settings):
    four = [SimpleUploadedFile(f"{n}.png", PNG, content_type="image/png") for n in range(4)]
    response = submit(api, photos=four)
    assert response.json()["errors"] == {"photos": ["最多上传 3 张照片。"]}
    settings.PUBLIC_PHOTO_MAX_BYTES = 1024
    large = submit(api, photos=[SimpleUploadedFile("大.png", PNG + b"\x00" * 1024, content_type="image/png")])
    assert large.json()["errors"] == {"photos": ["照片「大.png」超过 1 KB，请换一张或压缩后再传。"]}
    assert not Ticket.objects.exists()


def test_requests_are_limited_per_client_address(org, api, settings):
    limits(settings, public_submit="2/hour")
    assert [submit(api, phone=f"1390000000{n}").status_code for n in range(2)] == [201, 201]
    third = submit(api, phone="13900000009")
    assert third.status_code == 429
    assert third.json()["code"] == "throttled" and "后再试" in third.json()["detail"]
    assert int(third["Retry-After"]) > 0
    # A header the client writes itself does not make it someone else.
    spoofed = api.post(
        SUBMIT,
        {**request_fields(phone="13900000008"), **challenge(api)},
        format="multipart",
        HTTP_X_FORWARDED_FOR="10.9.9.9",
    )
    assert spoofed.status_code == 429
    assert submit(api, phone="13900000007", address="10.0.0.2").status_code == 201
    assert Ticket.objects.count() == 3


def test_requests_are_limited_per_phone_number_however_it_is_written(org, api, settings):
    limits(settings, public_submit_phone="2/day")
    written = ["13900001111", "139 0000 1111", "+86 13900001111"]
    codes = [submit(api, phone=phone, address=f"10.0.0.{n}").status_code for n, phone in enumerate(written)]
    assert codes == [201, 201, 429]
    assert submit(api, phone="13900002222", address="10.0.0.9").status_code == 201
    assert sorted(Ticket.objects.values_list("caller_phone", flat=True)) == ["13900001111"] * 2 + ["13900002222"]


# --- looking a ticket up ---------------------------------------------------------------------------------------


def public_ticket(api, **overrides) -> Ticket:  # type: ignore[no-untyped-def]
    response = submit(api, **overrides)
    assert response.status_code == 201, response.content
    return Ticket.objects.get(number=response.json()["number"])


def test_the_citizen_sees_the_public_steps_the_department_and_the_approved_reply(org, api):
    org.handler.full_name = "王承办"
    org.handler.save()
    org.dispatcher.full_name = "赵派单"
    org.dispatcher.save()
    other = make_ticket(org, caller_phone="13700007777")
    ticket = public_ticket(api)
    services.ticket_dispatch(ticket_id=ticket.id, actor=org.dispatcher, lead_department_id=org.other_bureau.id)
    services.ticket_return(ticket_id=ticket.id, actor=org.other_handler, reason="退单理由：不归本局管")
    services.ticket_approve_return(ticket_id=ticket.id, actor=org.dispatcher, note="同意退单备注")
    services.ticket_dispatch(ticket_id=ticket.id, actor=org.dispatcher, lead_department_id=org.bureau.id)
    services.ticket_accept(ticket_id=ticket.id, actor=org.handler)
    services.ticket_note_add(ticket_id=ticket.id, actor=org.handler, text="内部备注：来电人情绪激动")
    services.ticket_reply(ticket_id=ticket.id, actor=org.handler, reply_text="初稿答复", result="solved")

    # Replied but not approved: the draft is not the citizen's yet.
    body = api.get(STATUS.format(ticket.number), {"code": ticket.query_code}).json()
    assert (body["status_display"], body["reply"], body["can_rate"]) == ("办理中", None, False)
    assert "初稿答复" not in json.dumps(body, ensure_ascii=False)

    services.ticket_reject_reply(ticket_id=ticket.id, actor=org.dispatcher, reason="退回理由：答复不完整")
    services.ticket_reply(
        ticket_id=ticket.id, actor=org.handler, reply_text="已责令工地停止夜间施工。", result="solved"
    )
    services.ticket_approve_reply(ticket_id=ticket.id, actor=org.dispatcher)

    response = api.get(STATUS.format(ticket.number), {"code": ticket.query_code})
    assert response.status_code == 200, response.content
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert body["status"] == "callback" and body["status_display"] == "已答复"
    assert body["department"] == org.bureau.name
    assert body["reply"]["text"] == "已责令工地停止夜间施工。"
    assert body["can_rate"] is True
    assert body["phone_masked"] == "139****1111"
    assert [(e["step"], e["department"]) for e in body["timeline"]] == [
        ("received", None),
        ("dispatched", org.other_bureau.name),
        ("dispatched", org.bureau.name),
        ("accepted", org.bureau.name),
        ("replied", org.bureau.name),
    ]
    assert body["timeline"][-1]["step_display"] == "承办单位已答复"
    assert body["last_event_id"] == ticket.events.order_by("-id").first().id

    text = json.dumps(body, ensure_ascii=False)
    for internal in [
        "退单理由",
        "同意退单备注",
        "内部备注",
        "初稿答复",
        "退回理由",
        "王承办",
        "赵派单",
        org.handler.username,
        org.dispatcher.username,
        "13900001111",
        other.caller_phone,
        ticket.query_code,
        "return",
        "note",
    ]:
        assert internal not in text, internal


def test_a_wrong_code_and_an_unknown_number_get_the_same_answer_for_the_same_work(org, api, django_assert_num_queries):
    ticket = public_ticket(api)
    with django_assert_num_queries(1):
        wrong = api.get(STATUS.format(ticket.number), {"code": other_code(ticket.query_code)})
    unknown_number = ticket.number[:-6] + f"{(int(ticket.number[-6:]) + 1):06d}"
    with django_assert_num_queries(1):
        unknown = api.get(STATUS.format(unknown_number), {"code": ticket.query_code})
    draft = make_ticket(org, Status.DRAFT)
    with django_assert_num_queries(1):
        not_yet = api.get(STATUS.format(draft.number), {"code": draft.query_code})
    assert wrong.status_code == unknown.status_code == not_yet.status_code == 404
    assert wrong.content == unknown.content == not_yet.content
    assert wrong.json() == {"code": "ticket_not_found", "detail": "工单编号或查询码不正确。"}
    assert sorted(wrong.headers) == sorted(unknown.headers)


def test_repeated_wrong_codes_lock_the_number_even_for_the_right_code_until_the_lockout_lapses(org, api, settings):
    settings.PUBLIC_LOOKUP_MAX_FAILURES = 3
    settings.PUBLIC_LOOKUP_LOCKOUT_SECONDS = 2
    ticket = public_ticket(api)
    url = STATUS.format(ticket.number)
    wrong = other_code(ticket.query_code)
    # From different addresses: the lockout belongs to the number.
    codes = [api.get(url, {"code": wrong}, REMOTE_ADDR=f"10.1.0.{n}").status_code for n in range(3)]
    assert codes == [404, 404, 404]
    locked = api.get(url, {"code": ticket.query_code}, REMOTE_ADDR="10.1.1.1")
    assert locked.status_code == 429
    assert locked.json()["code"] == "lookup_locked"
    assert int(locked["Retry-After"]) > 0
    # The page and the rating from the page are locked too.
    page = Client(REMOTE_ADDR="10.1.1.2").post("/public/status/", {"number": ticket.number, "code": ticket.query_code})
    assert page.status_code == 429 and "输错次数过多" in page.content.decode()
    # An unknown number is locked the same way, so the lockout tells nothing either.
    unknown = ticket.number[:-6] + "999999"
    assert [api.get(STATUS.format(unknown), {"code": wrong}).status_code for _ in range(4)] == [404, 404, 404, 429]

    time.sleep(2.2)
    assert api.get(url, {"code": ticket.query_code}).status_code == 200


async def test_a_locked_number_is_refused_on_the_status_socket_too(org, api, settings, transactional_db):
    from asgiref.sync import sync_to_async

    settings.PUBLIC_LOOKUP_MAX_FAILURES = 2
    ticket = await sync_to_async(make_ticket)(org, Status.DISPATCHED)

    async def close_code(code: str) -> int:
        socket = WebsocketCommunicator(websocket_application, f"/ws/public/tickets/{ticket.number}/?code={code}")
        await socket.connect()
        while True:
            output = await socket.receive_output(timeout=2)
            if output["type"] == "websocket.close":
                await socket.disconnect()
                return int(output["code"])
            if json.loads(output.get("text", "{}")).get("type") == "catchup.complete":
                await socket.disconnect()
                return 0

    assert await close_code(ticket.query_code) == 0
    assert [await close_code(other_code(ticket.query_code)) for _ in range(2)] == [4404, 4404]
    assert await close_code(ticket.query_code) == 4404
    # The consumer ran the ORM on worker threads; their connections must not outlive the test database.
    await sync_to_async(connections.close_all)()


def test_look_ups_are_limited_per_address_and_per_number(org, api, settings):
    limits(settings, public_lookup="3/hour", public_lookup_ticket="5/day")
    settings.PUBLIC_LOOKUP_MAX_FAILURES = 100
    ticket = public_ticket(api)
    url = STATUS.format(ticket.number)
    codes = [api.get(url, {"code": ticket.query_code}).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    # Many addresses together are stopped by the number's own limit (which counted the refused fourth, too).
    spread = [api.get(url, {"code": ticket.query_code}, REMOTE_ADDR=f"10.2.0.{n}").status_code for n in range(3)]
    assert spread == [200, 429, 429]
    other = public_ticket(api, address="10.3.0.1", phone="13900003333")
    assert api.get(STATUS.format(other.number), {"code": other.query_code}, REMOTE_ADDR="10.3.0.1").status_code == 200


# --- hostile text ---------------------------------------------------------------------------------------------

HOSTILE_TITLE = "<img src=x onerror=alert(1)>"
HOSTILE_CONTENT = "<script>alert('xss')</script> '; DROP TABLE ticketing_ticket; -- \" OR 1=1"


def test_hostile_text_is_stored_as_written_and_shown_inert(org, api):
    ticket = public_ticket(api, title=HOSTILE_TITLE, content=HOSTILE_CONTENT, location="</script><b>楼下</b>")
    ticket.refresh_from_db()
    assert (ticket.title, ticket.content) == (HOSTILE_TITLE, HOSTILE_CONTENT)
    assert Ticket.objects.count() == 1

    # JSON carries the text as it was written; it is data, not markup.
    body = api.get(STATUS.format(ticket.number), {"code": ticket.query_code}).json()
    assert (body["title"], body["content"]) == (HOSTILE_TITLE, HOSTILE_CONTENT)

    page = Client().post("/public/status/", {"number": ticket.number, "code": ticket.query_code})
    html = page.content.decode()
    assert page.status_code == 200
    assert "&lt;script&gt;alert(&#x27;xss&#x27;)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "<script>alert" not in html and "<img src=x" not in html and "<b>楼下" not in html


# --- the pages without script --------------------------------------------------------------------------------


def page_challenge(client: Client) -> tuple[str, dict[str, str]]:
    html = client.get("/public/submit/").content.decode()
    token = html.split('name="challenge_token" value="')[1].split('"')[0]
    question = html.split('id="challenge-question">')[1].split("<")[0]
    return html, {"challenge_token": token, "challenge_answer": solve(question)}


def test_the_form_works_as_a_plain_post_and_shows_the_number_and_code(org):
    client = Client()
    html, answered = page_challenge(client)
    assert 'for="f-phone"' in html and 'id="f-phone"' in html
    fields = request_fields(consent="on", category=str(org.category.id), region="")
    photo = SimpleUploadedFile("现场.png", PNG, content_type="image/png")
    response = client.post("/public/submit/", {**fields, **answered, "photos": photo})
    assert response.status_code == 201, response.content.decode()[:2000]
    ticket = Ticket.objects.get()
    html = response.content.decode()
    assert ticket.number in html and ticket.query_code in html
    assert ticket.attachments.count() == 1 and ticket.region is None


def test_the_form_lists_errors_by_field_name_and_keeps_what_was_written(org):
    client = Client()
    _html, answered = page_challenge(client)
    fields = request_fields(phone="abc", title="")
    del fields["consent"]
    response = client.post("/public/submit/", {**fields, **answered})
    assert response.status_code == 400
    html = response.content.decode()
    assert "请修改以下内容后再提交" in html
    assert '<a href="#f-phone">联系电话：请填写正确的手机号码，或带区号的固定电话。</a>' in html
    assert '<a href="#f-consent">同意个人信息使用说明：请阅读并同意个人信息使用说明后再提交。</a>' in html
    assert '<a href="#f-title">标题：' in html
    assert 'aria-describedby="h-phone e-phone" aria-invalid="true"' in html and 'id="e-phone"' in html
    # What was written is still there, and a fresh question is asked.
    assert request_fields()["content"] in html and 'value="幸福小区东门"' in html
    assert answered["challenge_token"] not in html
    assert not Ticket.objects.exists()


def test_a_dissatisfied_rating_from_the_page_reopens_the_ticket(org, api):
    ticket = public_ticket(api)
    services.ticket_dispatch(ticket_id=ticket.id, actor=org.dispatcher, lead_department_id=org.bureau.id)
    services.ticket_accept(ticket_id=ticket.id, actor=org.handler)
    services.ticket_reply(ticket_id=ticket.id, actor=org.handler, reply_text="已处理。", result="solved")
    services.ticket_approve_reply(ticket_id=ticket.id, actor=org.dispatcher)
    client = Client()
    page = client.post("/public/status/", {"number": ticket.number, "code": ticket.query_code}).content.decode()
    assert 'id="rating-section" aria-labelledby="rating-title">' in page

    rating = {"number": ticket.number, "code": ticket.query_code, "satisfaction": "dissatisfied"}
    unchosen = client.post("/public/status/rate/", {**rating, "satisfaction": ""})
    assert unchosen.status_code == 400 and "请选择满意、基本满意或不满意。" in unchosen.content.decode()
    missing = client.post("/public/status/rate/", rating)
    assert missing.status_code == 400
    assert "请写明不满意的原因" in missing.content.decode()
    assert Ticket.objects.get(pk=ticket.id).status == Status.CALLBACK

    wrong = client.post("/public/status/rate/", {**rating, "code": other_code(ticket.query_code), "comment": "没修"})
    assert wrong.status_code == 404 and "工单编号或查询码不正确" in wrong.content.decode()

    done = client.post("/public/status/rate/", {**rating, "comment": "噪音依旧"})
    assert done.status_code == 200
    assert "已交承办单位重新办理" in done.content.decode()
    ticket.refresh_from_db()
    assert (ticket.status, ticket.satisfaction, ticket.reopen_count) == (
        Status.DISPATCHED,
        Satisfaction.DISSATISFIED,
        1,
    )
    assert ticket.events.filter(kind=Transition.REOPEN, actor=None).exists()
    # The earlier reply is history now; the rating form is gone.
    assert 'id="reply-section" aria-labelledby="reply-title" hidden' in done.content.decode()
    assert 'id="rating-section" aria-labelledby="rating-title" hidden' in done.content.decode()


def test_the_rating_api_still_answers_for_tickets_filed_on_the_site(org, api):
    ticket = public_ticket(api)
    services.ticket_dispatch(ticket_id=ticket.id, actor=org.dispatcher, lead_department_id=org.bureau.id)
    services.ticket_accept(ticket_id=ticket.id, actor=org.handler)
    services.ticket_reply(ticket_id=ticket.id, actor=org.handler, reply_text="已处理。", result="solved")
    services.ticket_approve_reply(ticket_id=ticket.id, actor=org.dispatcher)
    callbacks.callback_public_rate(number=ticket.number, query_code=ticket.query_code, satisfaction="satisfied")
    body = api.get(STATUS.format(ticket.number), {"code": ticket.query_code}).json()
    assert (body["status"], body["can_rate"], body["timeline"][-1]["step"]) == ("closed", False, "closed")
    assert body["reply"]["text"] == "已处理。"


def test_the_home_page_links_the_form_the_status_and_the_guides(db):
    html = Client().get("/public/").content.decode()
    assert 'href="/public/submit/"' in html and 'href="/public/status/"' in html
    assert 'action="/kb/"' in html and 'name="q"' in html
    assert 'href="/public/"' in Client().get("/").content.decode()


def test_wrong_codes_sent_to_the_rating_api_count_towards_the_lockout(org, api, settings):
    settings.PUBLIC_LOOKUP_MAX_FAILURES = 3
    ticket = make_ticket(org, Status.CALLBACK)
    rating = f"/api/v1/public/tickets/{ticket.number}/rating/"
    wrong = other_code(ticket.query_code)
    refused = [
        api.post(rating, {"query_code": wrong, "satisfaction": "satisfied"}, format="json", REMOTE_ADDR=f"10.2.0.{n}")
        for n in range(3)
    ]
    assert [r.status_code for r in refused] == [404, 404, 404]
    # Locked now: the right code is refused too, on the rating API and on the look-up.
    right = api.post(rating, {"query_code": ticket.query_code, "satisfaction": "satisfied"}, format="json")
    assert right.status_code == 429 and right.json()["code"] == "lookup_locked"
    assert api.get(STATUS.format(ticket.number), {"code": ticket.query_code}).status_code == 429
    ticket.refresh_from_db()
    assert ticket.status == Status.CALLBACK
