"""Open311 GeoReport v2 at /open311/v2/: every endpoint in JSON and XML (XML parsed and its element names checked
against the specification), the errors, the ticket a request becomes, what the public lists show and hide,
client keys, and third-party Open311 client libraries from PyPI driven against a real running server."""

import importlib.util
import json
import sys
import urllib.request
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta
from decimal import Decimal
from io import StringIO
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlencode

import pytest
from django.core.management import call_command
from django.test import Client

from hotline import clock
from tests.factories import CategoryFactory, RegionFactory, UserFactory
from tests.helpers import make_ticket, ticket_input
from ticketing import open311, services
from ticketing.calendar import TZ
from ticketing.models import Channel, Open311Client, Open311Request, RegionLevel, Ticket
from ticketing.open311_services import open311_client_create
from ticketing.workflow import Status

BASE = "/open311/v2"
# GeoReport v2, "GET Service List" and "GET Service Requests": the elements of one row, in order.
SERVICE_ELEMENTS = ["service_code", "service_name", "description", "metadata", "type", "keywords", "group"]
REQUEST_ELEMENTS = [
    "service_request_id",
    "status",
    "status_notes",
    "service_name",
    "service_code",
    "description",
    "agency_responsible",
    "service_notice",
    "requested_datetime",
    "updated_datetime",
    "expected_datetime",
    "address",
    "address_id",
    "zipcode",
    "lat",
    "long",
    "media_url",
]
CITIZEN_TEXT = (
    "小区门口的路灯坏了三天。晚上很黑，老人容易摔倒。我叫张三，电话 138 1234 5678，邮箱 zhangsan@example.com。"
)


@pytest.fixture
def key(org) -> str:  # type: ignore[no-untyped-def]
    return open311_client_create(name="市民随手拍 App")[1]


def get(client: Client, path: str, **params: Any) -> Any:
    return client.get(BASE + path, params)


def post(client: Client, path: str, data: dict[str, Any], *, query: dict[str, str] | None = None) -> Any:
    url = BASE + path + (f"?{urlencode(query)}" if query else "")
    return client.post(url, urlencode(data), content_type="application/x-www-form-urlencoded; charset=utf-8")


def xml_of(response: Any) -> ET.Element:
    assert response["Content-Type"] == "text/xml; charset=utf-8"
    assert response.content.startswith(b'<?xml version="1.0" encoding="utf-8"?>')
    # Our own server's answer: nothing untrusted is parsed here.
    return ET.fromstring(response.content)  # noqa: S314


def json_of(response: Any) -> Any:
    assert response["Content-Type"] == "application/json; charset=utf-8"
    return json.loads(response.content)


def request_body(org, **overrides: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {
        "service_code": str(org.category.id),
        "lat": "41.796701",
        "long": "123.398762",
        "address_string": "沈阳市和平区太原街1号",
        "description": CITIZEN_TEXT,
        "first_name": "三",
        "last_name": "张",
        "phone": "13812345678",
        "email": "zhangsan@example.com",
        "media_url": "https://img.example.com/lamp.jpg",
        **overrides,
    }


def assert_error(response: Any, status: int, fmt: str) -> str:
    assert response.status_code == status
    if fmt == "xml":
        root = xml_of(response)
        assert root.tag == "errors"
        [error] = list(root)
        assert error.tag == "error"
        assert [child.tag for child in error] == ["code", "description"]
        assert error.findtext("code") == str(status)
        return error.findtext("description") or ""
    [error] = json_of(response)
    assert set(error) == {"code", "description"} and error["code"] == status
    return str(error["description"])


# --- services -----------------------------------------------------------------------------------------------


@pytest.fixture
def categories(org):  # type: ignore[no-untyped-def]
    """org.category (城乡建设 / 物业管理), an inactive sibling, a first level without children, an inactive top."""
    CategoryFactory(name="停用的子类", parent=org.category.parent, is_active=False)
    alone = CategoryFactory(name="生态环境", sort_order=5)
    CategoryFactory(name="停用的大类", is_active=False)
    return org.category, alone


def test_services_are_active_second_levels_or_childless_first_levels(client, categories):
    leaf, alone = categories
    rows = json_of(get(client, "/services.json"))
    assert rows == [
        {
            "service_code": str(leaf.id),
            "service_name": "物业管理",
            "description": "城乡建设 / 物业管理",
            "metadata": False,
            "type": "realtime",
            "keywords": "物业管理, 城乡建设",
            "group": "城乡建设",
        },
        {
            "service_code": str(alone.id),
            "service_name": "生态环境",
            "description": "生态环境",
            "metadata": False,
            "type": "realtime",
            "keywords": "生态环境",
            "group": "生态环境",
        },
    ]

    root = xml_of(get(client, "/services.xml"))
    assert root.tag == "services"
    assert [service.tag for service in root] == ["service", "service"]
    assert [child.tag for child in root[0]] == SERVICE_ELEMENTS
    assert root[0].findtext("service_code") == str(leaf.id)
    assert root[0].findtext("metadata") == "false"
    assert root[1].findtext("group") == "生态环境"


def test_service_definition_is_empty_for_every_service_and_404_otherwise(client, categories):
    leaf, _ = categories
    assert json_of(get(client, f"/services/{leaf.id}.json")) == {"service_code": str(leaf.id), "attributes": []}
    root = xml_of(get(client, f"/services/{leaf.id}.xml"))
    assert root.tag == "service_definition"
    assert [child.tag for child in root] == ["service_code", "attributes"]
    assert root.findtext("service_code") == str(leaf.id) and list(root.find("attributes")) == []  # type: ignore[arg-type]

    # A first level with children is a group, not a service; unknown and inactive codes are not services.
    for code in (leaf.parent_id, 999999, "abc"):
        assert "没有编码为" in assert_error(get(client, f"/services/{code}.xml"), 404, "xml")
    assert_error(get(client, f"/services/{leaf.parent_id}.json"), 404, "json")


# --- filing a request ---------------------------------------------------------------------------------------


def test_a_request_becomes_a_citizen_ticket_waiting_for_dispatch(client, org, key):
    response = post(client, "/requests.json", {"api_key": key, **request_body(org)})

    assert response.status_code == 201
    [created] = json_of(response)
    assert set(created) == {"service_request_id", "service_notice"}
    ticket = Ticket.objects.get()
    assert created["service_request_id"] == ticket.number
    assert f"查询码：{ticket.query_code}" in created["service_notice"]

    assert ticket.channel == Channel.OPEN311
    assert ticket.created_by is None
    assert ticket.status == Status.PENDING_DISPATCH
    assert ticket.category == org.category
    assert ticket.appeal_type == "help"
    assert ticket.title == "小区门口的路灯坏了三天"
    assert ticket.content.startswith(CITIZEN_TEXT)
    assert "https://img.example.com/lamp.jpg" in ticket.content
    assert ticket.location_text == "沈阳市和平区太原街1号；坐标 41.796701,123.398762（WGS84）"
    # 沈阳市 and 和平区 are both named; the deeper one is taken.
    assert ticket.region == org.district
    assert (ticket.caller_name, ticket.caller_phone) == ("张三", "13812345678")
    submission = Open311Request.objects.get(ticket=ticket)
    assert (submission.latitude, submission.longitude) == (Decimal("41.796701"), Decimal("123.398762"))
    assert submission.email == "zhangsan@example.com"
    created_event = ticket.events.get(kind="created")
    assert created_event.actor is None
    assert created_event.data["open311_client"] == submission.client_id
    assert Open311Client.objects.get().last_used_at is not None


def test_a_request_filed_in_xml_with_the_key_in_the_query_string(client, org, key):
    body = request_body(org, lat="", long="", address_string="", address_id="A-1029")
    response = post(client, "/requests.xml", body, query={"api_key": key, "jurisdiction_id": "shenyang.gov.cn"})

    assert response.status_code == 201
    root = xml_of(response)
    assert root.tag == "service_requests"
    [request] = list(root)
    assert request.tag == "request"
    assert [child.tag for child in request] == ["service_request_id", "service_notice"]
    ticket = Ticket.objects.get(number=request.findtext("service_request_id"))
    assert ticket.location_text == "地址编号 A-1029" and ticket.region is None
    assert Open311Request.objects.get(ticket=ticket).address_id == "A-1029"


def test_a_missing_or_wrong_api_key_is_403_and_files_nothing(client, org, key):
    assert "缺少 api_key" in assert_error(post(client, "/requests.xml", request_body(org)), 403, "xml")
    bad = post(client, "/requests.json", {"api_key": "o311_guess", **request_body(org)})
    assert "无效" in assert_error(bad, 403, "json")
    client_row = Open311Client.objects.get()
    client_row.is_active = False
    client_row.save()
    assert_error(post(client, "/requests.json", {"api_key": key, **request_body(org)}), 403, "json")
    assert not Ticket.objects.exists()


@pytest.mark.parametrize(
    ("overrides", "status", "words"),
    [
        ({"service_code": "999999"}, 404, "service_code"),
        ({"service_code": ""}, 400, "service_code"),
        ({"lat": "", "long": "", "address_string": ""}, 400, "请提供位置"),
        ({"long": ""}, 400, "同时提供"),
        ({"lat": "北纬41度"}, 400, "lat"),
        ({"lat": "91"}, 400, "-90 到 90"),
        ({"description": "  "}, 400, "description"),
        ({"description": "长" * 4001}, 400, "4000"),
        ({"email": "not-an-address"}, 400, "email"),
        ({"phone": "call me"}, 400, "phone"),
        ({"media_url": "javascript:alert(1)"}, 400, "media_url"),
        ({"address_string": "路" * 201}, 400, "address_string"),
        ({"first_name": "名" * 33}, 400, "first_name"),
        ({"attribute[WHISPAWN]": "1"}, 400, "attribute"),
        ({"nickname": "x"}, 400, "nickname"),
    ],
)
def test_bad_requests_are_refused_with_a_clear_error_and_nothing_stored(client, org, key, overrides, status, words):
    body = {"api_key": key, **request_body(org, **overrides)}
    assert words in assert_error(post(client, "/requests.json", body), status, "json")
    assert not Ticket.objects.exists() and not Open311Request.objects.exists()


def test_the_longest_description_and_link_fit_in_a_ticket(client, org, key):
    link = "https://img.example.com/" + "a" * 876
    body = {"api_key": key, **request_body(org, description="长" * 4000, media_url=link)}
    assert post(client, "/requests.json", body).status_code == 201
    assert Ticket.objects.get().content.endswith(link)
    too_long = {"api_key": key, **request_body(org, media_url=link + "a")}
    assert "900" in assert_error(post(client, "/requests.json", too_long), 400, "json")


def test_an_address_names_its_region_only_when_that_is_clear(org):
    tianjin = RegionFactory(code="120100", name="天津市", level=RegionLevel.CITY)
    other_heping = RegionFactory(code="120101", name="和平区", level=RegionLevel.DISTRICT, parent=tianjin)
    assert open311.region_for_address("天津市和平区南京路") == other_heping
    assert open311.region_for_address("沈阳市和平区太原街1号") == org.district
    assert open311.region_for_address("和平区南京路") is None
    assert open311.region_for_address("沈河区和平区交界处") is None
    assert open311.region_for_address("某某路100号") is None


def test_creation_is_rate_limited_per_key(client, org, key, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "open311_create": "2/hour"},
    }
    for _ in range(2):
        assert post(client, "/requests.json", {"api_key": key, **request_body(org)}).status_code == 201
    refused = post(client, "/requests.xml", {"api_key": key, **request_body(org)})
    assert "请求过于频繁" in assert_error(refused, 429, "xml")
    assert int(refused["Retry-After"]) > 0
    # Another application's key has its own allowance.
    other_key = open311_client_create(name="另一个 App")[1]
    assert post(client, "/requests.json", {"api_key": other_key, **request_body(org)}).status_code == 201
    assert Ticket.objects.count() == 3


def test_reads_are_rate_limited_per_address_and_filing_is_not(client, org, key, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "open311_read": "2/hour"},
    }
    assert get(client, "/services.json").status_code == 200
    assert get(client, "/requests.xml").status_code == 200
    assert_error(get(client, "/services.json"), 429, "json")
    assert post(client, "/requests.json", {"api_key": key, **request_body(org)}).status_code == 201


# --- reading requests ---------------------------------------------------------------------------------------


@pytest.fixture
def public_set(org):  # type: ignore[no-untyped-def]
    """Tickets in every situation the public rules tell apart."""
    filed = services.ticket_create_public(
        data=ticket_input(
            channel="web",
            category_id=org.category.id,
            title="路灯不亮",
            content="我叫李四，手机13900001111，身份证号210102199001011234，邮箱 lisi@example.com，座机024-23456789。"
            "太原街路灯不亮。",
            location_text="太原街2号 联系电话13900001111",
            caller_name="李四",
            caller_phone="13900001111",
        )
    )
    phoned = make_ticket(
        org,
        Status.ACCEPTED,
        content="张三说他家住幸福小区3号楼2单元501室，电话13812345678。",
        location_text="幸福小区3号楼2单元501室",
        region_id=org.district.id,
    )
    merged = make_ticket(org, Status.MERGED)
    hidden = {
        "draft": make_ticket(org, Status.DRAFT),
        "cancelled": make_ticket(org, Status.CANCELLED),
        "transferred": make_ticket(org, Status.TRANSFERRED),
        "confidential": make_ticket(org, caller_confidential=True),
        "report": make_ticket(org, appeal_type="report"),
    }
    return {"filed": filed, "phoned": phoned, "merged": merged, "hidden": hidden}


def test_the_list_shows_public_requests_in_json_and_xml(client, org, public_set):
    rows = json_of(get(client, "/requests.json"))
    by_number = {row["service_request_id"]: row for row in rows}
    merged_into = Ticket.objects.get(pk=public_set["merged"].merged_into_id)
    assert set(by_number) == {
        public_set["filed"].number,
        public_set["phoned"].number,
        public_set["merged"].number,
        merged_into.number,
    }
    assert all(list(row) == REQUEST_ELEMENTS for row in rows)

    phoned = by_number[public_set["phoned"].number]
    ticket = Ticket.objects.get(pk=public_set["phoned"].pk)
    assert phoned["status"] == "open"
    assert phoned["status_notes"] == "办理中"
    assert phoned["agency_responsible"] == "市住房和城乡建设局"
    # Taken down on a call: the title only, the region instead of the place.
    assert phoned["description"] == "小区夜间施工噪音扰民"
    assert phoned["address"] == "和平区"
    assert phoned["requested_datetime"] == ticket.created_at.astimezone(TZ).isoformat(timespec="seconds")
    assert phoned["requested_datetime"].endswith("+08:00")
    assert phoned["expected_datetime"] == ticket.reply_due_at.astimezone(TZ).isoformat(timespec="seconds")
    assert phoned["service_notice"].startswith("承办单位应于")
    assert phoned["lat"] is None and phoned["media_url"] is None

    filed = by_number[public_set["filed"].number]
    assert filed["status"] == "open" and filed["status_notes"] == "已受理，等待转交"
    assert filed["service_code"] == str(org.category.id) and filed["service_name"] == "物业管理"
    # The citizen's own text, with what identifies people masked.
    assert filed["description"] == (
        "我叫李*，手机139****1111，身份证号210***********1234，邮箱 l***@example.com，"
        "座机024*****6789。太原街路灯不亮。"
    )
    assert filed["address"] == "太原街2号 联系电话139****1111"
    assert filed["agency_responsible"] is None and filed["expected_datetime"] is None

    merged = by_number[public_set["merged"].number]
    assert (merged["status"], merged["status_notes"]) == ("closed", "已与相同诉求合并办理")

    root = xml_of(get(client, "/requests.xml"))
    assert root.tag == "service_requests"
    assert {request.tag for request in root} == {"request"}
    assert all([child.tag for child in request] == REQUEST_ELEMENTS for request in root)
    assert {request.findtext("service_request_id") for request in root} == set(by_number)
    xml_filed = next(r for r in root if r.findtext("service_request_id") == public_set["filed"].number)
    assert xml_filed.findtext("description") == filed["description"]
    assert xml_filed.find("agency_responsible").text is None  # type: ignore[union-attr]


def test_no_personal_data_leaves_through_the_lists(client, org, key, public_set):
    post(client, "/requests.json", {"api_key": key, **request_body(org)})
    secrets_ = [
        "13900001111",
        "210102199001011234",
        "lisi@example.com",
        "23456789",
        "李四",
        "13812345678",
        "138 1234 5678",
        "zhangsan@example.com",
        "张三",
        "幸福小区3号楼2单元501室",
    ]
    for path in ("/requests.json", "/requests.xml"):
        body = get(client, path).content.decode()
        assert body.count("<request>") + body.count('"service_request_id"') == 5
        for secret in secrets_:
            assert secret not in body, (path, secret)
    for ticket in Ticket.objects.all():
        for fmt in ("json", "xml"):
            body = get(client, f"/requests/{ticket.number}.{fmt}").content.decode()
            assert not [secret for secret in secrets_ if secret in body]


def test_hidden_requests_are_404_but_the_filing_client_still_follows_its_own(client, org, key, public_set):
    for ticket in public_set["hidden"].values():
        assert_error(get(client, f"/requests/{ticket.number}.json"), 404, "json")
        rows = json_of(get(client, "/requests.json", service_request_id=ticket.number))
        assert rows == []

    response = post(client, "/requests.json", {"api_key": key, **request_body(org)})
    number = json_of(response)[0]["service_request_id"]
    ticket = Ticket.objects.get(number=number)
    services.ticket_cancel(ticket_id=ticket.id, actor=org.agent, reason="重复提交")

    assert_error(get(client, f"/requests/{number}.xml"), 404, "xml")
    [own] = json_of(get(client, f"/requests/{number}.json", api_key=key))
    assert (own["status"], own["status_notes"]) == ("closed", "已撤销")
    assert own["lat"] == 41.796701 and own["long"] == 123.398762
    other_key = open311_client_create(name="另一个 App")[1]
    assert_error(get(client, f"/requests/{number}.json", api_key=other_key), 404, "json")
    assert_error(get(client, f"/requests/{number}.json", api_key="o311_wrong"), 403, "json")


def test_one_request_in_json_and_xml(client, org, public_set):
    number = public_set["phoned"].number
    [row] = json_of(get(client, f"/requests/{number}.json"))
    assert row["service_request_id"] == number and list(row) == REQUEST_ELEMENTS

    root = xml_of(get(client, f"/requests/{number}.xml"))
    assert root.tag == "service_requests"
    [request] = list(root)
    assert request.tag == "request"
    assert [child.tag for child in request] == REQUEST_ELEMENTS
    assert request.findtext("status") == "open"
    assert_error(get(client, "/requests/12345-20260101-999999.xml"), 404, "xml")


def test_list_filters(client, org, public_set):
    def numbers(**params: Any) -> set[str]:
        return {row["service_request_id"] for row in json_of(get(client, "/requests.json", **params))}

    filed, phoned, merged = public_set["filed"].number, public_set["phoned"].number, public_set["merged"].number
    assert numbers(status="closed") == {merged}
    assert phoned in numbers(status="open") and merged not in numbers(status="open")
    assert merged in numbers(status="open,closed")
    assert numbers(service_code=str(org.category.id)) == {filed}
    # A first-level code takes its children's requests too.
    assert numbers(service_code=str(org.category.parent_id)) == {filed}
    # service_request_id overrides every other argument, and is comma-delimited.
    assert numbers(service_request_id=f"{filed},{merged}", status="open") == {filed, merged}

    today = clock.now().astimezone(TZ).date()
    assert filed in numbers(start_date=f"{today}T00:00:00+08:00", end_date=f"{today + timedelta(days=1)}T00:00:00Z")
    assert numbers(start_date=f"{today + timedelta(days=1)}T00:00:00+08:00") == set()
    assert filed in numbers(end_date=str(today))


def test_the_default_window_is_90_days_and_the_limit_holds(client, org, monkeypatch):
    with clock.frozen(clock.now() - timedelta(days=100)):
        old = services.ticket_create_public(data=ticket_input(channel="web", title="旧诉求"))
    recent = [services.ticket_create_public(data=ticket_input(channel="web")) for _ in range(3)]

    numbers = [row["service_request_id"] for row in json_of(get(client, "/requests.json"))]
    assert numbers == [t.number for t in reversed(recent)]
    # Older requests by their number, or within an explicit window.
    assert [r["service_request_id"] for r in json_of(get(client, "/requests.json", service_request_id=old.number))] == [
        old.number
    ]
    start = (old.created_at - timedelta(days=1)).astimezone(TZ).isoformat()
    assert old.number in [r["service_request_id"] for r in json_of(get(client, "/requests.json", start_date=start))]

    monkeypatch.setattr(open311, "LIST_LIMIT", 2)
    assert len(json_of(get(client, "/requests.json"))) == 2


@pytest.mark.parametrize(
    ("params", "status", "words"),
    [
        ({"start_date": "yesterday"}, 400, "start_date"),
        ({"end_date": "2026-13-01T00:00:00Z"}, 400, "end_date"),
        ({"start_date": "2026-01-01T00:00:00Z", "end_date": "2026-06-01T00:00:00Z"}, 400, "90 天"),
        ({"start_date": "2026-02-01T00:00:00Z", "end_date": "2026-01-01T00:00:00Z"}, 400, "不能早于"),
        ({"status": "pending"}, 400, "status"),
        ({"service_code": "999999"}, 404, "999999"),
    ],
)
def test_bad_list_arguments(client, org, params, status, words):
    assert words in assert_error(get(client, "/requests.json", **params), status, "json")
    assert words in assert_error(get(client, "/requests.xml", **params), status, "xml")


def test_the_list_costs_one_query(client, org, public_set, django_assert_num_queries):
    with django_assert_num_queries(1):
        assert len(json_of(get(client, "/requests.json"))) == 4
    with django_assert_num_queries(2):
        get(client, "/requests.xml", service_code=str(org.category.id))


# --- the rest of the surface --------------------------------------------------------------------------------


def test_tokens_formats_paths_and_methods_answer_in_the_open311_error_shape(client, org):
    assert "不发放 token" in assert_error(get(client, "/tokens/123456.xml"), 404, "xml")
    assert_error(get(client, "/tokens/123456.json"), 404, "json")
    assert ".xml 或 .json" in assert_error(get(client, "/services.csv"), 404, "xml")
    assert_error(get(client, "/services"), 404, "xml")
    assert_error(get(client, "/discovery.json"), 404, "xml")
    assert "POST" in assert_error(post(client, "/services.json", {}), 405, "json")
    response = client.put(BASE + "/requests.json")
    assert_error(response, 405, "json")


def test_text_that_xml_cannot_carry_is_dropped_and_markup_is_escaped(client, org):
    services.ticket_create_public(
        data=ticket_input(channel="web", content="<b>路灯</b> & 井盖\x01\x0b坏了", title="路灯")
    )
    root = xml_of(get(client, "/requests.xml"))
    assert root[0].findtext("description") == "<b>路灯</b> & 井盖坏了"


def test_masking_of_personal_data_in_text():
    text = (
        "王五报称：身份证21010219900101123X，旧身份证210102900101123，手机+86 139-0000-1111、"
        "13800001111，座机(024)不算，024 23456789转8，电话：2345678，邮箱 wang.wu@example.cn，王五家门口。"
    )
    assert open311.mask_personal_data(text, names=["王五", "", "王"]) == (
        "王*报称：身份证210***********123X，旧身份证210********1123，手机+86**********1111、"
        "138****1111，座机(024)不算，024*****6789转8，电话：2****78，邮箱 w***@example.cn，王*家门口。"
    )


def test_the_schema_of_api_v1_leaves_open311_out(api):
    schema = json.loads(api.get("/api/v1/schema/", {"format": "json"}).content)
    assert not [path for path in schema["paths"] if path.startswith("/open311")]


# --- keys: command and admin --------------------------------------------------------------------------------


def test_the_key_command_creates_lists_and_revokes(db):
    out, err = StringIO(), StringIO()
    call_command("open311_key", "create", "市民 App", stdout=out, stderr=err)
    key = out.getvalue().strip().splitlines()[-1]
    assert key.startswith("o311_") and "只显示这一次" in err.getvalue()
    client_row = Open311Client.objects.get()
    assert client_row.key_hash == open311.key_digest(key) and key not in client_row.key_hash
    assert open311.client_for_key(key) == client_row

    out = StringIO()
    call_command("open311_key", "list", stdout=out)
    assert "市民 App" in out.getvalue() and "未使用" in out.getvalue() and key not in out.getvalue()

    call_command("open311_key", "revoke", str(client_row.id), stdout=StringIO())
    assert open311.client_for_key(key) is None


def test_the_admin_issues_a_key_once(client, db):
    admin_user = UserFactory(username="root", is_staff=True, is_superuser=True)
    client.force_login(admin_user)
    response = client.post("/admin/ticketing/open311client/add/", {"name": "政务 App", "is_active": "on"}, follow=True)
    assert response.status_code == 200
    [message] = [str(m) for m in response.context["messages"] if "api_key" in str(m)]
    key = message.rsplit("：", 1)[1]
    assert open311.client_for_key(key) == Open311Client.objects.get(name="政务 App")
    page = client.get(f"/admin/ticketing/open311client/{Open311Client.objects.get().id}/change/").content.decode()
    assert key not in page


# --- third-party clients against a running server -----------------------------------------------------------


def _open311_library() -> type:
    """Code for America's `open311` (1.1) is the one Open311 client on PyPI that files requests. It was written
    for Python 2: its modules import their siblings by implicit relative imports (`from api import API`), and
    it hands urlopen text. Its files are loaded unchanged, under the module names they import each other by,
    and its urlopen gets the text as bytes. Its XML reading uses `getchildren()`, gone since Python 3.9, so it
    is used with JSON."""
    spec = importlib.util.find_spec("open311")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail("the open311 package is not installed: pip install -r requirements-dev.txt", pytrace=False)
    root = Path(next(iter(spec.submodule_search_locations)))
    names = ["object_dict", "xml2dict", "xml2dict.xml2dict", "api", "api.api", "open311_v1_1_client"]
    saved = {name: sys.modules[name] for name in names if name in sys.modules}

    def load(name: str, path: Path, *, package: bool = False) -> ModuleType:
        locations = [str(path.parent)] if package else None
        found = importlib.util.spec_from_file_location(name, path, submodule_search_locations=locations)
        assert found is not None and found.loader is not None
        module = importlib.util.module_from_spec(found)
        sys.modules[name] = module
        found.loader.exec_module(module)
        return module

    try:
        load("object_dict", root / "api" / "xml2dict" / "object_dict.py")
        load("xml2dict", root / "api" / "xml2dict" / "__init__.py", package=True)
        sys.modules["api.api"] = load("api", root / "api" / "api.py")
        library = load("open311_v1_1_client", root / "open311.py")
    finally:
        for name in names:
            sys.modules.pop(name, None)
        sys.modules.update(saved)

    def urlopen(url: str, data: str | bytes | None = None) -> Any:
        return urllib.request.urlopen(url, data.encode() if isinstance(data, str) else data)  # noqa: S310

    library.urlopen = urlopen  # type: ignore[attr-defined]
    return library.Open311  # type: ignore[attr-defined,no-any-return]


def test_third_party_clients_file_and_follow_requests_on_a_live_server(
    transactional_db, live_server, org, categories, key, monkeypatch
):
    from georeport import GeoReport

    # Both libraries honour proxy settings; the server is on this machine.
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")

    leaf, alone = categories
    endpoint = f"{live_server.url}{BASE}"
    as_json = GeoReport(endpoint, output_format="json")
    as_xml = GeoReport(endpoint, output_format="xml")

    # georeport (PyPI): the service list and a definition, in both formats.
    listed = as_json.get_service_list()
    assert [(s["service_code"], s["service_name"], s["group"]) for s in listed] == [
        (str(leaf.id), "物业管理", "城乡建设"),
        (str(alone.id), "生态环境", "生态环境"),
    ]
    assert [(s["service_code"], s["metadata"]) for s in as_xml.get_service_list()] == [
        (str(leaf.id), "false"),
        (str(alone.id), "false"),
    ]
    assert as_json.get_service_definition(str(leaf.id)) == {"service_code": str(leaf.id), "attributes": []}
    assert as_xml.get_service_definition(str(leaf.id)) == {"service_code": str(leaf.id), "attributes": None}

    # open311 (PyPI, Code for America) files a request with our api_key; georeport has no way to file.
    Open311 = _open311_library()
    filer = Open311(endpoint=endpoint, api_key=key, format="json")
    answer = filer.post_service_request(
        service_code=str(leaf.id),
        address_string="沈阳市和平区太原街1号",
        lat="41.796701",
        long="123.398762",
        first_name="三",
        last_name="张",
        phone="13812345678",
        email="zhangsan@example.com",
        description=CITIZEN_TEXT,
        media_url="https://img.example.com/lamp.jpg",
    )
    [created] = answer
    number = created["service_request_id"]
    ticket = Ticket.objects.get(number=number)
    assert ticket.channel == Channel.OPEN311 and ticket.created_by is None
    assert ticket.status == Status.PENDING_DISPATCH
    assert f"查询码：{ticket.query_code}" in created["service_notice"]
    [fetched_by_filer] = filer.get_service_request(number)
    assert fetched_by_filer["status"] == "open"

    # georeport follows it: in the list (filtered as an app would) and alone, JSON and XML.
    [row] = as_json.get_service_requests(service_code=str(leaf.id), status="open")
    assert row["service_request_id"] == number
    assert row["status_notes"] == "已受理，等待转交"
    assert (row["lat"], row["long"]) == (41.796701, 123.398762)
    assert "电话 138******5678" in row["description"] and "1234" not in row["description"]
    xml_row = as_xml.get_service_requests(service_request_id=number)
    assert xml_row["service_request_id"] == number and xml_row["status"] == "open"
    assert as_json.get_service_request(number)["service_name"] == "物业管理"
    one = as_xml.get_service_request(number)
    assert one["service_code"] == str(leaf.id) and one["address"].startswith("沈阳市和平区太原街1号")
    assert one["requested_datetime"] == ticket.created_at.astimezone(TZ).isoformat(timespec="seconds")
    assert datetime.fromisoformat(one["requested_datetime"]).utcoffset() == timedelta(hours=8)

    # After dispatch the lead department is the agency responsible.
    services.ticket_dispatch(ticket_id=ticket.id, actor=org.dispatcher, lead_department_id=org.bureau.id)
    assert as_json.get_service_request(number)["agency_responsible"] == "市住房和城乡建设局"
