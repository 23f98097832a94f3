"""Open311 GeoReport v2 at `/open311/v2/` (docs/open311.md), for the apps and libraries that speak it.

Paths and format suffixes are the specification's: `services.{format}`, `services/{service_code}.{format}`,
`requests.{format}` (GET lists, POST files with an `api_key`), `requests/{service_request_id}.{format}` and
`tokens/{token}.{format}`, with `format` xml or json. XML uses the specification's element names and no
namespace; JSON is the same data as a list (the Spark convention the specification follows); errors are
`<errors><error><code/><description/></error></errors>` or `[{"code", "description"}]`, with the HTTP status
as the code: 403 for a missing or wrong api_key, 404 for what does not exist, 400 for the rest.

This API stands apart from /api/v1/: its own error shape, no session or token authentication (so no CSRF: the
only credential is the api_key a POST carries), and no OpenAPI schema (the GeoReport specification is its
documentation). Views parse input, call one selector or service, and render.
"""

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.http import Http404
from django.utils.dateparse import parse_date, parse_datetime
from rest_framework import exceptions, status
from rest_framework.negotiation import BaseContentNegotiation, DefaultContentNegotiation
from rest_framework.parsers import BaseParser, FormParser, MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle, SimpleRateThrottle
from rest_framework.views import APIView

from hotline import clock
from hotline.errors import ApplicationError

from .. import open311
from ..calendar import TZ
from ..models import Open311Client
from ..open311_services import Open311RequestInput, open311_request_create

# --- documents and their two formats ------------------------------------------------------------------------


@dataclass(frozen=True)
class Document:
    """A response body: the root element, the element of each row (None: the root is one object) and the rows."""

    root: str
    item: str | None
    rows: list[dict[str, Any]] | dict[str, Any]


# Lists inside a row, and the element of each of their items.
LIST_ITEMS = {"attributes": "attribute", "values": "value"}
# Characters XML 1.0 cannot carry, even escaped.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _fill(element: ET.Element, row: Mapping[str, Any]) -> None:
    for name, value in row.items():
        child = ET.SubElement(element, name)
        if isinstance(value, list):
            for item in value:
                _fill(ET.SubElement(child, LIST_ITEMS[name]), item)
        elif isinstance(value, bool):
            child.text = "true" if value else "false"
        elif value is not None:
            child.text = _NOT_XML.sub("", str(value))


class XMLRenderer(BaseRenderer):
    media_type = "text/xml"
    format = "xml"
    charset = "utf-8"

    def render(
        self, data: Any, accepted_media_type: str | None = None, renderer_context: Mapping[str, Any] | None = None
    ) -> bytes:
        assert isinstance(data, Document)
        root = ET.Element(data.root)
        if isinstance(data.rows, dict):
            _fill(root, data.rows)
        else:
            for row in data.rows:
                _fill(ET.SubElement(root, data.item or "item"), row)
        return ('<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode")).encode()


class JSONRenderer(BaseRenderer):
    media_type = "application/json"
    format = "json"
    charset = "utf-8"

    def render(
        self, data: Any, accepted_media_type: str | None = None, renderer_context: Mapping[str, Any] | None = None
    ) -> bytes:
        assert isinstance(data, Document)
        return json.dumps(data.rows, ensure_ascii=False).encode()


class Open311Error(Exception):
    def __init__(self, status_code: int, description: str):
        super().__init__(description)
        self.status_code = status_code
        self.description = description


class SuffixNegotiation(BaseContentNegotiation):
    """The format is the path's suffix, whatever Accept says; XML (the required format) when there is none."""

    def select_parser(self, request: Request, parsers: Iterable[BaseParser]) -> BaseParser | None:
        return DefaultContentNegotiation().select_parser(request, parsers)

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        for renderer in renderers:
            if renderer.format == (format_suffix or "xml"):
                return renderer, renderer.media_type
        suffix = (format_suffix or "")[:10]
        raise Open311Error(status.HTTP_404_NOT_FOUND, f"不支持 {suffix} 格式，请使用 .xml 或 .json。")


# --- rate limits --------------------------------------------------------------------------------------------


class _RateThrottle(SimpleRateThrottle):
    """Rates read from settings when a request comes (DRF binds them at import), so a deployment or a test that
    changes REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] is obeyed."""

    def get_rate(self) -> str | None:
        rates = settings.REST_FRAMEWORK.get("DEFAULT_THROTTLE_RATES") or {}
        rate = rates.get(self.scope or "") if isinstance(rates, dict) else None
        return str(rate) if rate else None


class ReadThrottle(_RateThrottle):
    """Reads per client address. Filing is limited per client key instead (ClientThrottle): an app's server may
    file for all its users from one address."""

    scope = "open311_read"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class ClientThrottle(_RateThrottle):
    """Requests filed per client key, whatever the address (an app's users are everywhere)."""

    scope = "open311_create"

    def __init__(self, client: Open311Client):
        self.client_id = client.id
        super().__init__()

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        return self.cache_format % {"scope": self.scope, "ident": self.client_id}


# --- the views ----------------------------------------------------------------------------------------------


class Open311View(APIView):
    authentication_classes: list[type] = []
    permission_classes = [AllowAny]
    renderer_classes = [XMLRenderer, JSONRenderer]
    parser_classes = [FormParser, MultiPartParser]
    content_negotiation_class = SuffixNegotiation
    throttle_classes = [ReadThrottle]
    # Documented by the GeoReport v2 specification, not by our OpenAPI schema.
    schema = None

    def get_throttles(self) -> list[BaseThrottle]:
        return [] if self.request.method == "POST" else super().get_throttles()

    def handle_exception(self, exc: Exception) -> Response:
        headers: dict[str, str] = {}
        if isinstance(exc, Open311Error):
            code, description = exc.status_code, exc.description
        elif isinstance(exc, ApplicationError):
            field = exc.extra.get("field")
            code, description = exc.status_code, f"{field}：{exc.message}" if field else exc.message
        elif isinstance(exc, exceptions.Throttled):
            wait = max(1, int(getattr(exc, "wait", None) or 1))
            code, description = status.HTTP_429_TOO_MANY_REQUESTS, f"请求过于频繁，请 {wait} 秒后再试。"
            headers["Retry-After"] = str(wait)
        elif isinstance(exc, Http404 | exceptions.NotFound):
            code, description = status.HTTP_404_NOT_FOUND, "未找到。"
        elif isinstance(exc, exceptions.MethodNotAllowed):
            code, description = status.HTTP_405_METHOD_NOT_ALLOWED, f"此地址不支持 {self.request.method} 请求。"
        elif isinstance(exc, exceptions.APIException):
            code, description = exc.status_code, str(exc.detail)
        else:
            return super().handle_exception(exc)
        error = Document("errors", "error", [{"code": code, "description": description}])
        return Response(error, status=code, headers=headers)

    def api_client(self, request: Request, *, required: bool) -> Open311Client | None:
        """The client whose api_key came in a POST's body or in the query string (some clients put it in the URL)."""
        sent = request.data.get("api_key") if request.method == "POST" else None
        key = str(sent or request.query_params.get("api_key") or "").strip()
        if not key:
            if required:
                raise Open311Error(status.HTTP_403_FORBIDDEN, "缺少 api_key：提交诉求须使用热线中心发放的接入密钥。")
            return None
        client = open311.client_for_key(key)
        if client is None:
            raise Open311Error(status.HTTP_403_FORBIDDEN, "api_key 无效或已停用。")
        return client


class ServiceListView(Open311View):
    def get(self, request: Request, format: str | None = None) -> Response:
        return Response(Document("services", "service", [open311.service_row(s) for s in open311.services()]))


class ServiceDefinitionView(Open311View):
    """No service has extra attributes (every one is listed with metadata false), so a definition is the code and
    an empty attribute list; a code that is no service is 404."""

    def get(self, request: Request, service_code: str, format: str | None = None) -> Response:
        if open311.service_for_code(service_code) is None:
            raise Open311Error(status.HTTP_404_NOT_FOUND, f"没有编码为 {service_code[:20]} 的服务。")
        return Response(Document("service_definition", None, {"service_code": service_code, "attributes": []}))


# Fields of a GeoReport v2 POST. Others are refused: a misspelt field must not lose what it carried.
POST_FIELDS = frozenset(
    {
        "api_key",
        "jurisdiction_id",
        "service_code",
        "lat",
        "long",
        "address_string",
        "address_id",
        "email",
        "device_id",
        "account_id",
        "first_name",
        "last_name",
        "phone",
        "description",
        "media_url",
    }
)


def _values(params: Any, name: str) -> list[str]:
    """A parameter that may be repeated and comma-delimited (GeoReport v2), without empty items."""
    return [part.strip() for value in params.getlist(name) for part in value.split(",") if part.strip()]


def _moment(params: Any, name: str) -> datetime | None:
    value = (params.get(name) or "").strip()
    if not value:
        return None
    try:
        moment = parse_datetime(value) if "T" in value else None
        if moment is None and "T" not in value:
            day = parse_date(value)
            moment = datetime.combine(day, time.max if name == "end_date" else time.min) if day else None
    except ValueError:
        moment = None
    if moment is None:
        raise Open311Error(
            status.HTTP_400_BAD_REQUEST, f"{name} 格式不正确，应为 W3C 日期时间，例如 2026-01-01T00:00:00+08:00。"
        )
    # The specification asks for a time zone; one left out is read as the hotline's local time.
    return moment if moment.tzinfo else moment.replace(tzinfo=TZ)


def _list_filters(params: Any) -> open311.RequestFilters:
    numbers = _values(params, "service_request_id")
    if numbers:
        if len(numbers) > open311.LIST_LIMIT:
            raise Open311Error(
                status.HTTP_400_BAD_REQUEST, f"一次最多查询 {open311.LIST_LIMIT} 个 service_request_id。"
            )
        return open311.RequestFilters(numbers=numbers)
    statuses = frozenset(_values(params, "status"))
    if statuses - {"open", "closed"}:
        raise Open311Error(status.HTTP_400_BAD_REQUEST, "status 只能是 open 或 closed（可用逗号分隔）。")
    codes = _values(params, "service_code")
    category_ids = None
    if codes:
        found = open311.category_ids_for_codes(codes)
        unknown = [code for code, category_id in found.items() if category_id is None]
        if unknown:
            raise Open311Error(status.HTTP_404_NOT_FOUND, f"没有编码为 {', '.join(unknown)[:60]} 的服务。")
        category_ids = sorted({i for i in found.values() if i is not None})
    start, end = _moment(params, "start_date"), _moment(params, "end_date")
    window = open311.LIST_WINDOW
    if start is None and end is None:
        end = clock.now()
    if start is None:
        assert end is not None
        start = end - window
    elif end is None:
        end = start + window
    if end < start:
        raise Open311Error(status.HTTP_400_BAD_REQUEST, "end_date 不能早于 start_date。")
    if end - start > window + timedelta(seconds=1):
        raise Open311Error(status.HTTP_400_BAD_REQUEST, "start_date 与 end_date 相差不能超过 90 天。")
    return open311.RequestFilters(category_ids=category_ids, start=start, end=end, statuses=statuses or None)


class RequestListView(Open311View):
    def get(self, request: Request, format: str | None = None) -> Response:
        client = self.api_client(request, required=False)
        tickets = open311.request_list(filters=_list_filters(request.query_params), client=client)
        return Response(Document("service_requests", "request", [open311.request_row(t) for t in tickets]))

    def post(self, request: Request, format: str | None = None) -> Response:
        client = self.api_client(request, required=True)
        assert client is not None
        throttle = ClientThrottle(client)
        if not throttle.allow_request(request, self):
            self.throttled(request, throttle.wait() or 1)
        fields = set(request.data.keys())
        if any(name.startswith("attribute[") for name in fields):
            raise Open311Error(
                status.HTTP_400_BAD_REQUEST, "本服务没有附加属性（metadata 为 false），请不要提交 attribute[...]。"
            )
        unknown = sorted(fields - POST_FIELDS)
        if unknown:
            raise Open311Error(status.HTTP_400_BAD_REQUEST, f"未知字段：{', '.join(unknown)[:100]}。")
        data = {name: str(request.data.get(name) or "") for name in fields}
        # jurisdiction_id: one jurisdiction is served; device_id and account_id are not kept (nothing needs them).
        ticket = open311_request_create(
            client=client,
            data=Open311RequestInput(
                service_code=data.get("service_code", ""),
                description=data.get("description", ""),
                lat=data.get("lat", ""),
                long=data.get("long", ""),
                address_string=data.get("address_string", ""),
                address_id=data.get("address_id", ""),
                email=data.get("email", ""),
                phone=data.get("phone", ""),
                first_name=data.get("first_name", ""),
                last_name=data.get("last_name", ""),
                media_url=data.get("media_url", ""),
            ),
        )
        # A realtime service: the id comes at once, so no token; account_id is not returned.
        created = {"service_request_id": ticket.number, "service_notice": open311.created_notice(ticket)}
        return Response(Document("service_requests", "request", [created]), status=status.HTTP_201_CREATED)


class RequestView(Open311View):
    def get(self, request: Request, service_request_id: str, format: str | None = None) -> Response:
        ticket = open311.request_get(number=service_request_id, client=self.api_client(request, required=False))
        if ticket is None:
            raise Open311Error(status.HTTP_404_NOT_FOUND, f"没有编号为 {service_request_id[:40]} 的公开诉求。")
        return Response(Document("service_requests", "request", [open311.request_row(ticket)]))


class TokenView(Open311View):
    """Every service is realtime: a POST answers with the service_request_id and never with a token, so no token
    exists to look up (GeoReport v2: 404, token not found)."""

    def get(self, request: Request, token: str, format: str | None = None) -> Response:
        raise Open311Error(
            status.HTTP_404_NOT_FOUND, "没有这个 token：本服务提交后立即返回 service_request_id，不发放 token。"
        )


class UnknownPathView(Open311View):
    """Anything else under /open311/v2/: an Open311 error rather than the site's HTML page."""

    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        raise Open311Error(
            status.HTTP_404_NOT_FOUND, "没有这个接口：请查阅 GeoReport v2 的接口地址（如 services.xml）。"
        )

    post = put = patch = delete = get
