import datetime as dt
import logging
import re

import pytest

from hotline import clock
from hotline.errors import ApplicationError, NotPermitted
from tests.helpers import make_ticket, ticket_input
from ticketing import services
from ticketing.calendar import TZ
from ticketing.masking import mask_id_number, mask_name, mask_phone
from ticketing.workflow import Status


def test_numbers_run_per_line_and_day(org):
    with clock.frozen(dt.datetime(2026, 11, 22, 23, 59, tzinfo=TZ)):
        first = services.ticket_create(data=ticket_input(), actor=org.agent)
        second = services.ticket_create(data=ticket_input(), actor=org.agent)
        other_line = services.ticket_create(data=ticket_input(hotline_line="8890"), actor=org.agent)
    # Midnight in Shanghai starts a new day (16:00 UTC).
    with clock.frozen(dt.datetime(2026, 11, 23, 0, 0, tzinfo=TZ)):
        next_day = services.ticket_create(data=ticket_input(), actor=org.agent)
    assert first.number == "12345-20261122-000001"
    assert second.number == "12345-20261122-000002"
    assert other_line.number == "8890-20261122-000001"
    assert next_day.number == "12345-20261123-000001"


def test_create_records_the_trail_and_a_query_code(org):
    ticket = services.ticket_create(data=ticket_input(channel="web"), actor=org.agent)
    assert ticket.status == Status.PENDING_DISPATCH
    assert re.fullmatch(r"[0-9]{6}", ticket.query_code)
    event = ticket.events.get()
    assert (event.kind, event.from_status, event.to_status, event.actor_id) == (
        "created",
        "",
        "pending_dispatch",
        org.agent.id,
    )
    assert event.data == {
        "channel": "web",
        "hotline_line": "12345",
        "draft": False,
        "appeal_type": "complaint",
        "urgency": "normal",
        "title": "小区夜间施工噪音扰民",
    }


def test_departments_cannot_take_in_tickets(org):
    with pytest.raises(NotPermitted):
        services.ticket_create(data=ticket_input(), actor=org.handler)


def test_unknown_line_category_and_region_are_refused(org):
    for overrides, code in (
        ({"hotline_line": "110"}, "unknown_hotline_line"),
        ({"category_id": 999999}, "invalid_category"),
        ({"region_id": 999999}, "invalid_region"),
        ({"duplicate_of_id": 999999}, "invalid_link"),
    ):
        with pytest.raises(ApplicationError) as refused:
            services.ticket_create(data=ticket_input(**overrides), actor=org.agent)
        assert refused.value.code == code


def test_update_records_field_names_not_values(org):
    ticket = make_ticket(org, Status.DRAFT)
    services.ticket_update(
        ticket_id=ticket.id,
        actor=org.agent,
        changes={"caller_phone": "13900001111", "region_id": org.street.id, "title": "  新标题 "},
    )
    ticket.refresh_from_db()
    assert ticket.title == "新标题"
    event = ticket.events.latest("id")
    assert event.kind == "updated"
    assert event.data == {"fields": ["caller_phone", "region", "title"]}
    assert "13900001111" not in str(event.data)


def test_contact_reveal_respects_confidentiality_and_leaves_a_trail(org):
    ticket = make_ticket(org, Status.DISPATCHED, caller_confidential=True)
    with pytest.raises(NotPermitted):
        services.ticket_contact_reveal(ticket_id=ticket.id, actor=org.handler)
    contact = services.ticket_contact_reveal(ticket_id=ticket.id, actor=org.dispatcher)
    assert contact["caller_phone"] == "13812345678"
    viewed = ticket.events.filter(kind="contact_viewed")
    assert list(viewed.values_list("actor_id", flat=True)) == [org.dispatcher.id]


def test_no_personal_data_in_logs(org, caplog):
    with caplog.at_level(logging.DEBUG):
        ticket = make_ticket(org, Status.CLOSED, caller_name="李四", caller_id_number="11010519491231002X")
        services.ticket_contact_reveal(ticket_id=ticket.id, actor=org.supervisor)
    assert ticket.number in caplog.text
    for secret in ("13812345678", "李四", "11010519491231002X"):
        assert secret not in caplog.text


@pytest.mark.parametrize(
    ("value", "masked"),
    [("13812345678", "138****5678"), ("024-23456789", "024*****6789"), ("12345", "1**45"), ("", "")],
)
def test_mask_phone(value, masked):
    assert mask_phone(value) == masked


def test_mask_name_and_id_number():
    assert mask_name("张三") == "张*"
    assert mask_name("欧阳娜娜") == "欧***"
    assert mask_id_number("11010519491231002X") == "110***********002X"


def test_department_upsert_replaces_the_responsibility_list(db):
    from ticketing import directory
    from ticketing.directory import DepartmentInput

    data = DepartmentInput(code="T1", name="市水务局", kind="city_bureau", responsibilities=["供水管网维修", "排水"])
    directory.department_upsert(data=data)
    department = directory.department_upsert(
        data=DepartmentInput(code="T1", name="市水务局", kind="city_bureau", responsibilities=["排水", "河道管理"])
    )
    assert sorted(department.responsibilities.values_list("title", flat=True)) == ["排水", "河道管理"]
