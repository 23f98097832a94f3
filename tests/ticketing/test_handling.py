"""Handling beside the transitions: hand-down to sub-units, assisting departments' parts, attachments and
notes, through the services and the API; and the department workbench's inbox endpoint."""

import io
import struct
import zipfile
import zlib
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext

from hotline import clock
from hotline.errors import ApplicationError, InvalidTransition, NotFound, NotPermitted
from tests.helpers import make_ticket
from ticketing import selectors, services, workbench_selectors
from ticketing.api.handling_serializers import sniffed_content_type
from ticketing.calendar import TZ
from ticketing.models import (
    EVENT_ASSISTING_REPLY,
    EVENT_ATTACHMENT,
    EVENT_HANDED_TO_UNIT,
    EVENT_NOTE,
    AssistingReply,
    Ticket,
    TicketAttachment,
    TicketEvent,
    TicketEventDepartment,
)
from ticketing.workflow import Status

TICKETS = "/api/v1/tickets/"


def _png() -> bytes:
    """A real 1x1 PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def _docx() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", "<w:document/>")
    return buffer.getvalue()


PNG = _png()
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@pytest.fixture
def media(settings, tmp_path) -> Path:  # type: ignore[no-untyped-def]
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


def _stored_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def _kinds(ticket: Ticket) -> list[str]:
    return list(ticket.events.order_by("id").values_list("kind", flat=True))


def _at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2025, 3, day, hour, minute, tzinfo=TZ)


# --- hand-down to a sub-unit: services ---------------------------------------------------------------------


def test_the_lead_department_hands_a_ticket_to_its_sub_unit_whose_members_then_see_it(org):
    ticket = make_ticket(org, Status.ACCEPTED)
    assert not selectors.ticket_visible_to(user=org.unit_handler).filter(pk=ticket.id).exists()

    handed = services.ticket_hand_to_unit(
        ticket_id=ticket.id, actor=org.handler, unit_id=org.bureau_unit.id, note="  请物业监管处核查  "
    )

    assert handed.handling_unit_id == org.bureau_unit.id
    assert handed.status == Status.ACCEPTED
    assert selectors.ticket_visible_to(user=org.unit_handler).filter(pk=ticket.id).exists()
    event = ticket.events.get(kind=EVENT_HANDED_TO_UNIT)
    assert event.actor == org.handler
    assert event.data == {
        "department": org.bureau.id,
        "unit": org.bureau_unit.id,
        "previous_unit": None,
        "note": "请物业监管处核查",
    }
    assert set(TicketEventDepartment.objects.filter(event=event).values_list("department_id", flat=True)) == {
        org.bureau.id,
        org.bureau_unit.id,
    }
    # The sub-unit works on it; the lead department still accepts, returns and replies.
    with pytest.raises(NotPermitted):
        services.ticket_reply(ticket_id=ticket.id, actor=org.unit_handler, reply_text="已处理", result="solved")


def test_taking_a_ticket_back_tells_the_unit_and_hides_it_from_the_unit_again(org):
    ticket = make_ticket(org, Status.DISPATCHED)
    services.ticket_hand_to_unit(ticket_id=ticket.id, actor=org.lead, unit_id=org.bureau_unit.id)

    services.ticket_hand_to_unit(ticket_id=ticket.id, actor=org.handler, unit_id=None, note="由本局直接办理")

    ticket.refresh_from_db()
    assert ticket.handling_unit_id is None
    event = ticket.events.filter(kind=EVENT_HANDED_TO_UNIT).order_by("-id").first()
    assert event is not None and event.data["unit"] is None and event.data["previous_unit"] == org.bureau_unit.id
    # The unit's screen hears that the ticket left it.
    assert TicketEventDepartment.objects.filter(event=event, department=org.bureau_unit).exists()
    assert not selectors.ticket_visible_to(user=org.unit_handler).filter(pk=ticket.id).exists()


@pytest.mark.parametrize("unit", ["other_bureau", "bureau", "street_office"])
def test_a_ticket_goes_only_to_a_unit_below_the_lead_department(org, unit):
    ticket = make_ticket(org, Status.ACCEPTED)
    before = _kinds(ticket)

    with pytest.raises(ApplicationError) as refused:
        services.ticket_hand_to_unit(ticket_id=ticket.id, actor=org.handler, unit_id=getattr(org, unit).id)

    assert refused.value.code == "invalid_department"
    assert "下级单位" in refused.value.message
    ticket.refresh_from_db()
    assert ticket.handling_unit_id is None
    assert _kinds(ticket) == before


def test_only_the_lead_department_hands_down(org):
    ticket = make_ticket(org, Status.ACCEPTED)
    with pytest.raises(NotFound):
        services.ticket_hand_to_unit(ticket_id=ticket.id, actor=org.other_handler, unit_id=org.bureau_unit.id)
    with pytest.raises(NotPermitted):
        services.ticket_hand_to_unit(ticket_id=ticket.id, actor=org.dispatcher, unit_id=org.bureau_unit.id)
    services.ticket_hand_to_unit(ticket_id=ticket.id, actor=org.handler, unit_id=org.bureau_unit.id)
    # The unit sees the ticket now, but hands nothing on by itself.
    with pytest.raises(NotPermitted):
        services.ticket_hand_to_unit(ticket_id=ticket.id, actor=org.unit_handler, unit_id=None)


def test_a_replied_ticket_is_not_handed_down(org):
    ticket = make_ticket(org, Status.REPLIED)
    with pytest.raises(InvalidTransition):
        services.ticket_hand_to_unit(ticket_id=ticket.id, actor=org.handler, unit_id=org.bureau_unit.id)


# --- assisting departments: services -----------------------------------------------------------------------


def _with_assisting(org, status: Status = Status.DISPATCHED) -> Ticket:  # type: ignore[no-untyped-def]
    ticket = make_ticket(org, Status.PENDING_DISPATCH)
    services.ticket_dispatch(
        ticket_id=ticket.id,
        actor=org.dispatcher,
        lead_department_id=org.bureau.id,
        assisting_department_ids=[org.other_bureau.id],
    )
    if status == Status.ACCEPTED:
        services.ticket_accept(ticket_id=ticket.id, actor=org.handler)
    ticket.refresh_from_db()
    return ticket


def test_an_assisting_department_adds_its_part_for_the_lead_department(org):
    ticket = _with_assisting(org)

    part = services.ticket_assisting_reply_add(
        ticket_id=ticket.id, actor=org.other_handler, department_id=org.other_bureau.id, text="  经检测噪声超标。 "
    )

    assert part.text == "经检测噪声超标。"
    assert part.author == org.other_handler
    event = ticket.events.get(kind=EVENT_ASSISTING_REPLY)
    assert event.data == {"assisting_reply": part.id, "department": org.other_bureau.id}
    # The lead department reads it.
    handling = workbench_selectors.ticket_handling(user=org.handler, ticket_id=ticket.id)
    assert [p.text for p in handling.assisting_replies] == ["经检测噪声超标。"]


def test_a_department_that_does_not_assist_cannot_add_a_part(org):
    ticket = _with_assisting(org)
    with pytest.raises(ApplicationError) as lead_itself:
        services.ticket_assisting_reply_add(
            ticket_id=ticket.id, actor=org.handler, department_id=org.bureau.id, text="主办单位不是协办"
        )
    assert lead_itself.value.code == "not_assisting"
    with pytest.raises(NotPermitted):
        services.ticket_assisting_reply_add(
            ticket_id=ticket.id, actor=org.handler, department_id=org.other_bureau.id, text="冒名协办"
        )
    with pytest.raises(NotFound):
        services.ticket_assisting_reply_add(
            ticket_id=ticket.id, actor=org.street_handler, department_id=org.street_office.id, text="无关单位"
        )
    assert not AssistingReply.objects.exists()
    assert EVENT_ASSISTING_REPLY not in _kinds(ticket)


# --- the API: hand-down ------------------------------------------------------------------------------------


def test_handing_down_through_the_api(org, api_as):
    ticket = make_ticket(org, Status.ACCEPTED)
    handling = api_as(org.handler).get(f"{TICKETS}{ticket.id}/handling/")
    assert handling.status_code == 200
    assert handling.json()["may_lead"] is True
    assert handling.json()["handing_units"] == [
        {"id": org.bureau_unit.id, "code": "B1-1", "name": "市住建局物业监管处", "depth": 0}
    ]

    response = api_as(org.handler).post(
        f"{TICKETS}{ticket.id}/handling-unit/", {"unit": org.bureau_unit.id, "note": "请核查"}, format="json"
    )

    assert response.status_code == 200
    assert response.json()["handling_unit"] == {"id": org.bureau_unit.id, "code": "B1-1", "name": "市住建局物业监管处"}
    # The unit's members see it now, and what they may do there.
    unit = api_as(org.unit_handler)
    assert unit.get(f"{TICKETS}{ticket.id}/").status_code == 200
    unit_view = unit.get(f"{TICKETS}{ticket.id}/handling/").json()
    assert unit_view["may_lead"] is False
    assert unit_view["handing_units"] == []
    timeline = unit.get(f"{TICKETS}{ticket.id}/timeline/").json()
    assert timeline[-1]["kind"] == EVENT_HANDED_TO_UNIT and timeline[-1]["data"]["note"] == "请核查"


def test_handing_down_through_the_api_refuses_clearly(org, api_as):
    ticket = make_ticket(org, Status.ACCEPTED)
    url = f"{TICKETS}{ticket.id}/handling-unit/"

    wrong = api_as(org.handler).post(url, {"unit": org.other_bureau.id}, format="json")
    assert wrong.status_code == 400
    assert wrong.json() == {"code": "invalid_department", "detail": "只能交办给主办单位的下级单位。", "field": "unit"}

    missing = api_as(org.handler).post(url, {"note": "忘了选单位"}, format="json")
    assert missing.status_code == 400 and "unit" in missing.json()["errors"]
    unknown = api_as(org.handler).post(url, {"unit": org.bureau_unit.id, "department": 1}, format="json")
    assert unknown.json()["errors"] == {"department": ["未知字段。"]}

    assert api_as(org.other_handler).post(url, {"unit": org.bureau_unit.id}, format="json").status_code == 404
    assert api_as(org.dispatcher).post(url, {"unit": org.bureau_unit.id}, format="json").status_code == 403
    ticket.refresh_from_db()
    assert ticket.handling_unit_id is None
    assert EVENT_HANDED_TO_UNIT not in _kinds(ticket)


# --- the API: assisting parts ------------------------------------------------------------------------------


def test_assisting_parts_through_the_api(org, api_as):
    ticket = _with_assisting(org, Status.ACCEPTED)
    url = f"{TICKETS}{ticket.id}/assisting-replies/"
    assisting = api_as(org.other_handler)
    assert assisting.get(f"{TICKETS}{ticket.id}/handling/").json()["own_assisting_departments"] == [
        {"id": org.other_bureau.id, "code": "B2", "name": "市生态环境局"}
    ]

    created = assisting.post(url, {"department": org.other_bureau.id, "text": "噪声检测报告已出具。"}, format="json")

    assert created.status_code == 201
    body = created.json()
    assert body["department"]["id"] == org.other_bureau.id
    assert body["text"] == "噪声检测报告已出具。"
    listed = api_as(org.handler).get(url)
    assert listed.status_code == 200 and [p["id"] for p in listed.json()] == [body["id"]]
    assert api_as(org.street_handler).get(url).status_code == 404


def test_assisting_parts_through_the_api_refuse_clearly(org, api_as):
    ticket = _with_assisting(org)
    url = f"{TICKETS}{ticket.id}/assisting-replies/"

    not_assisting = api_as(org.handler).post(url, {"department": org.bureau.id, "text": "主办单位"}, format="json")
    assert not_assisting.status_code == 400
    assert not_assisting.json()["code"] == "not_assisting"
    assert not_assisting.json()["detail"] == "该单位不是本工单的协办单位。"

    impostor = api_as(org.handler).post(url, {"department": org.other_bureau.id, "text": "冒名"}, format="json")
    assert impostor.status_code == 403
    blank = api_as(org.other_handler).post(url, {"department": org.other_bureau.id, "text": "  "}, format="json")
    assert blank.status_code == 400 and "text" in blank.json()["errors"]
    outsider = api_as(org.street_handler).post(url, {"department": org.street_office.id, "text": "无关"}, format="json")
    assert outsider.status_code == 404
    assert not AssistingReply.objects.exists()


# --- the API: attachments ----------------------------------------------------------------------------------


def _upload(client, ticket_id: int, name: str, data: bytes, content_type: str):  # type: ignore[no-untyped-def]
    upload = SimpleUploadedFile(name, data, content_type=content_type)
    return client.post(f"{TICKETS}{ticket_id}/attachments/", {"file": upload}, format="multipart")


def test_an_attachment_is_stored_with_the_type_its_bytes_show_and_downloaded_by_its_readers(org, api_as, media):
    ticket = make_ticket(org, Status.ACCEPTED)

    # The browser did not know the type; the bytes say PNG.
    response = _upload(api_as(org.handler), ticket.id, "现场照片.png", PNG, "application/octet-stream")

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["name"] == "现场照片.png"
    assert body["content_type"] == "image/png"
    assert body["size"] == len(PNG)
    assert body["department"]["id"] == org.bureau.id
    assert body["url"] == f"{TICKETS}{ticket.id}/attachments/{body['id']}/"
    attachment = TicketAttachment.objects.get()
    # The stored name is random: the citizen's file name never reaches the disk.
    stored = _stored_files(media)
    assert len(stored) == 1 and "现场" not in str(stored[0]) and stored[0].read_bytes() == PNG
    event = ticket.events.get(kind=EVENT_ATTACHMENT)
    assert event.data == {"attachment": attachment.id, "size": len(PNG), "content_type": "image/png"}

    download = api_as(org.handler).get(body["url"], HTTP_ACCEPT="image/png")
    assert download.status_code == 200
    assert b"".join(download.streaming_content) == PNG
    assert download["Content-Type"] == "image/png"
    assert download["Content-Disposition"] == f"attachment; filename*=utf-8''{quote('现场照片.png')}"
    assert "no-store" in download["Cache-Control"]
    # The hotline centre sees every ticket, so it reads its files too.
    assert api_as(org.agent).get(body["url"]).status_code == 200
    listed = api_as(org.handler).get(f"{TICKETS}{ticket.id}/attachments/").json()
    assert [a["id"] for a in listed] == [attachment.id]


def test_an_outsider_cannot_download_or_list_an_attachment(org, api_as, api, media):
    ticket = make_ticket(org, Status.ACCEPTED)
    url = _upload(api_as(org.handler), ticket.id, "合同.pdf", PDF, "application/pdf").json()["url"]

    assert api_as(org.other_handler).get(url).status_code == 404
    assert api_as(org.other_handler).get(f"{TICKETS}{ticket.id}/attachments/").status_code == 404
    assert api_as(org.other_handler).get(url.replace(f"/{ticket.id}/", "/999999/")).status_code == 404
    # Another ticket's number with this attachment's id is not a way in either.
    other = make_ticket(org, Status.ACCEPTED, department=org.other_bureau)
    assert api_as(org.other_handler).get(url.replace(f"/{ticket.id}/", f"/{other.id}/")).status_code == 404
    api.force_authenticate(user=None)
    assert api.get(url).status_code == 401


@pytest.mark.parametrize(
    ("name", "data", "content_type", "code"),
    [
        ("空文件.png", b"", "image/png", "empty_file"),
        ("照片.png", b"this is not a picture at all", "image/png", "file_content_mismatch"),
        ("扫描件.pdf", PNG, "application/pdf", None),  # a PNG called PDF is stored as the PNG it is
        ("程序.exe", b"MZ\x90\x00" + b"\x00" * 60, "application/x-msdownload", "file_type_not_allowed"),
        ("说明.txt", b"\x00\x01\x02binary", "text/plain", "file_content_mismatch"),
        ("压缩包.zip", b"PK\x03\x04" + b"\x00" * 40, "application/zip", "file_type_not_allowed"),
    ],
)
def test_bad_uploads_are_refused_clearly_and_nothing_is_stored(org, api_as, media, name, data, content_type, code):
    ticket = make_ticket(org, Status.ACCEPTED)

    response = _upload(api_as(org.handler), ticket.id, name, data, content_type)

    if code is None:
        assert response.status_code == 201 and response.json()["content_type"] == "image/png"
        return
    assert response.status_code == 400, response.json()
    assert response.json()["code"] == code
    assert response.json()["field"] == "file"
    assert any("\u4e00" <= ch <= "\u9fff" for ch in response.json()["detail"])
    assert not TicketAttachment.objects.exists()
    assert _stored_files(media) == []
    assert EVENT_ATTACHMENT not in _kinds(ticket)


def test_a_file_over_the_limit_is_refused_without_being_stored(org, api_as, media, settings):
    settings.TICKET_ATTACHMENT_MAX_BYTES = 1024
    ticket = make_ticket(org, Status.ACCEPTED)

    response = _upload(api_as(org.handler), ticket.id, "大图.png", PNG + b"\x00" * 2048, "image/png")

    assert response.status_code == 400
    assert response.json()["code"] == "file_too_large"
    assert not TicketAttachment.objects.exists()
    assert _stored_files(media) == []


def test_an_upload_needs_a_file_and_a_visible_open_ticket(org, api_as, media):
    ticket = make_ticket(org, Status.ACCEPTED)
    no_file = api_as(org.handler).post(f"{TICKETS}{ticket.id}/attachments/", {}, format="multipart")
    assert no_file.status_code == 400 and "file" in no_file.json()["errors"]
    assert _upload(api_as(org.other_handler), ticket.id, "照片.png", PNG, "image/png").status_code == 404
    closed = make_ticket(org, Status.CLOSED)
    refused = _upload(api_as(org.agent), closed.id, "照片.png", PNG, "image/png")
    assert refused.status_code == 409
    assert not TicketAttachment.objects.exists()
    assert _stored_files(media) == []


@pytest.mark.parametrize(
    ("data", "declared", "name", "expected"),
    [
        (PNG, "image/jpeg", "a.jpg", "image/png"),
        (b"\xff\xd8\xff\xe0" + b"\x00" * 20, "", "a", "image/jpeg"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "application/octet-stream", "a", "image/webp"),
        (b"RIFF\x00\x00\x00\x00WAVEfmt ", "audio/x-wav", "录音.wav", "audio/wav"),
        (b"ID3\x03\x00" + b"\x00" * 20, "", "录音.mp3", "audio/mpeg"),
        (PDF, "application/octet-stream", "a.bin", "application/pdf"),
        (_docx(), "", "情况说明.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 20, "", "台账.xls", "application/vnd.ms-excel"),
        ("情况说明：已整改。".encode("gb18030"), "text/plain; charset=gb18030", "说明.txt", "text/plain"),
        ("情况说明".encode(), "application/octet-stream", "说明.txt", "text/plain"),
    ],
)
def test_the_stored_type_comes_from_the_bytes(data, declared, name, expected):
    assert sniffed_content_type(data, declared=declared, name=name) == expected


# --- notes and the trail -----------------------------------------------------------------------------------


def test_notes_and_every_handling_step_are_on_the_trail(org, api_as, media):
    ticket = _with_assisting(org, Status.ACCEPTED)

    note = api_as(org.handler).post(f"{TICKETS}{ticket.id}/notes/", {"text": "已约定周五上门"}, format="json")
    assert note.status_code == 201 and note.json()["kind"] == EVENT_NOTE
    blank = api_as(org.handler).post(f"{TICKETS}{ticket.id}/notes/", {"text": ""}, format="json")
    assert blank.status_code == 400
    assert (
        api_as(org.street_handler).post(f"{TICKETS}{ticket.id}/notes/", {"text": "无关"}, format="json").status_code
        == 404
    )
    api_as(org.handler).post(f"{TICKETS}{ticket.id}/handling-unit/", {"unit": org.bureau_unit.id}, format="json")
    api_as(org.other_handler).post(
        f"{TICKETS}{ticket.id}/assisting-replies/", {"department": org.other_bureau.id, "text": "已检测"}, format="json"
    )
    _upload(api_as(org.handler), ticket.id, "照片.png", PNG, "image/png")

    kinds = [e["kind"] for e in api_as(org.handler).get(f"{TICKETS}{ticket.id}/timeline/").json()]
    assert kinds[-4:] == [EVENT_NOTE, EVENT_HANDED_TO_UNIT, EVENT_ASSISTING_REPLY, EVENT_ATTACHMENT]
    # Every step was told to the lead, the assisting department and the unit.
    last = TicketEvent.objects.filter(ticket=ticket).order_by("-id").first()
    assert set(TicketEventDepartment.objects.filter(event=last).values_list("department_id", flat=True)) == {
        org.bureau.id,
        org.bureau_unit.id,
        org.other_bureau.id,
    }


# --- the workbench's inbox ---------------------------------------------------------------------------------


@pytest.fixture
def desk(org):  # type: ignore[no-untyped-def]
    """Tickets on the bureau's desk at various stages, made on Monday 3 March 2025 and Tuesday 4 March."""
    with clock.frozen(_at(3, 9)):
        reply_running = make_ticket(org, Status.ACCEPTED)
    with clock.frozen(_at(3, 10)):
        accept_soon = make_ticket(org, Status.DISPATCHED)
        paused = make_ticket(org, Status.SUSPENDED)
        elsewhere = make_ticket(org, Status.DISPATCHED, department=org.other_bureau)
    with clock.frozen(_at(4, 11)):
        accept_later = make_ticket(org, Status.DISPATCHED)
        in_unit = make_ticket(org, Status.DISPATCHED, department=org.bureau_unit)
    return {
        "reply_running": reply_running,
        "accept_soon": accept_soon,
        "paused": paused,
        "elsewhere": elsewhere,
        "accept_later": accept_later,
        "in_unit": in_unit,
    }


def test_the_inbox_lists_the_nearest_deadline_first_and_counts_by_state(org, api_as, desk):
    with clock.frozen(_at(4, 10, 30)):
        response = api_as(org.handler).get(f"/api/v1/workbench/departments/{org.bureau.id}/inbox/")

    assert response.status_code == 200
    body = response.json()
    assert body["department"] == {"id": org.bureau.id, "code": "B1", "name": "市住房和城乡建设局"}
    assert body["department_ids"] == [org.bureau.id]
    numbers = [t["number"] for t in body["tickets"]]
    assert numbers == [
        desk["accept_soon"].number,  # accept due Tuesday 10:00: already overdue
        desk["accept_later"].number,  # accept due Wednesday 11:00
        desk["reply_running"].number,  # reply due next Monday
        desk["paused"].number,  # no clock runs
    ]
    rows = {t["number"]: t for t in body["tickets"]}
    assert rows[desk["accept_soon"].number]["sla"] == "overdue"
    assert rows[desk["accept_soon"].number]["deadline"] == "accept"
    assert rows[desk["accept_later"].number]["sla"] == "ok"
    assert rows[desk["reply_running"].number]["deadline"] == "reply"
    assert rows[desk["paused"].number]["sla"] == "paused" and rows[desk["paused"].number]["due_at"] is None
    assert all(t["role"] == "lead" for t in body["tickets"])
    assert body["counts"] == {
        "dispatched": 2,
        "accepted": 1,
        "return_pending": 0,
        "suspended": 1,
        "replied": 0,
        "overdue": 1,
        "warning": 0,
        "total": 4,
    }
    assert body["truncated"] is False
    assert (
        body["last_event_id"] == TicketEventDepartment.objects.filter(department=org.bureau).latest("event_id").event_id
    )
    # No caller data on the desk list.
    assert "13812345678" not in response.content.decode() and "张三" not in response.content.decode()


def test_a_lead_sees_the_subtree_and_a_unit_sees_what_was_handed_down(org, api_as, desk):
    lead = api_as(org.lead).get(f"/api/v1/workbench/departments/{org.bureau.id}/inbox/").json()
    assert lead["department_ids"] == sorted([org.bureau.id, org.bureau_unit.id])
    assert desk["in_unit"].number in [t["number"] for t in lead["tickets"]]
    assert desk["elsewhere"].number not in [t["number"] for t in lead["tickets"]]

    services.ticket_hand_to_unit(ticket_id=desk["accept_later"].id, actor=org.handler, unit_id=org.bureau_unit.id)
    unit = api_as(org.unit_handler).get(f"/api/v1/workbench/departments/{org.bureau_unit.id}/inbox/").json()
    roles = {t["number"]: t["role"] for t in unit["tickets"]}
    assert roles == {desk["in_unit"].number: "lead", desk["accept_later"].number: "unit"}


def test_an_assisting_department_sees_the_ticket_as_assisting(org, api_as):
    ticket = _with_assisting(org)
    body = api_as(org.other_handler).get(f"/api/v1/workbench/departments/{org.other_bureau.id}/inbox/").json()
    assert [(t["id"], t["role"]) for t in body["tickets"]] == [(ticket.id, "assisting")]


def test_the_inbox_is_only_for_the_departments_own_people(org, api_as, api):
    url = f"/api/v1/workbench/departments/{org.bureau.id}/inbox/"
    assert api_as(org.other_handler).get(url).status_code == 404
    # A handler does not open a sub-unit's desk; a lead does.
    assert api_as(org.handler).get(f"/api/v1/workbench/departments/{org.bureau_unit.id}/inbox/").status_code == 404
    assert api_as(org.lead).get(f"/api/v1/workbench/departments/{org.bureau_unit.id}/inbox/").status_code == 200
    agent = api_as(org.agent).get(url)
    assert agent.status_code == 403 and agent.json()["detail"] == "只有承办单位人员可以使用工作台。"
    assert api_as(org.handler).get("/api/v1/workbench/departments/999999/inbox/").status_code == 404
    api.force_authenticate(user=None)
    assert api.get(url).status_code == 401


def test_the_inbox_does_not_query_per_ticket(org, api_as):
    client = api_as(org.handler)
    url = f"/api/v1/workbench/departments/{org.bureau.id}/inbox/"
    make_ticket(org, Status.DISPATCHED)
    with CaptureQueriesContext(connection) as one:
        assert client.get(url).status_code == 200
    for status in (Status.DISPATCHED, Status.ACCEPTED, Status.SUSPENDED, Status.REPLIED):
        make_ticket(org, status)
    _with_assisting(org)
    with CaptureQueriesContext(connection) as six:
        assert len(client.get(url).json()["tickets"]) == 6
    assert len(six) == len(one)


def test_the_schema_documents_the_handling_endpoints(org, api_as):
    import yaml

    paths = yaml.safe_load(api_as(org.agent).get("/api/v1/schema/").content)["paths"]
    for path in (
        "/api/v1/tickets/{ticket_id}/handling/",
        "/api/v1/tickets/{ticket_id}/handling-unit/",
        "/api/v1/tickets/{ticket_id}/assisting-replies/",
        "/api/v1/tickets/{ticket_id}/attachments/",
        "/api/v1/tickets/{ticket_id}/attachments/{attachment_id}/",
        "/api/v1/tickets/{ticket_id}/notes/",
        "/api/v1/workbench/departments/{department_id}/inbox/",
    ):
        assert path in paths
    assert "multipart/form-data" in paths["/api/v1/tickets/{ticket_id}/attachments/"]["post"]["requestBody"]["content"]
