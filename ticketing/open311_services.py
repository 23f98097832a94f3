"""Writes for Open311 GeoReport v2: client keys, and a request filed by a client (docs/open311.md).

A request becomes a ticket through `services.ticket_create_public` (channel open311, no staff author, straight
to the dispatch queue), with what GeoReport v2 carries beyond a ticket's fields kept beside it in
`Open311Request`, in the same transaction.
"""

import logging
import re
import secrets
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator, validate_email
from django.db import transaction

from hotline import clock
from hotline.errors import ApplicationError, NotFound

from . import open311
from .models import AppealType, Channel, Open311Client, Open311Request, Ticket
from .services import TicketInput, ticket_create_public

logger = logging.getLogger(__name__)

KEY_PREFIX = "o311_"
NAME_MAX_LENGTH = 100
# GeoReport v2 limits a description to 4,000 characters.
DESCRIPTION_MAX_LENGTH = 4000
ADDRESS_MAX_LENGTH = 200
ADDRESS_ID_MAX_LENGTH = 100
# With the longest description and the words around it, a ticket's 5,000 characters still hold the link.
MEDIA_URL_MAX_LENGTH = 900
PERSON_NAME_MAX_LENGTH = 32
TITLE_MAX_LENGTH = 40
_PHONE = re.compile(r"\+?[0-9][0-9 ()-]{2,30}")
_SENTENCE_END = re.compile(r"[。！？!?；;\n]|\.(?:\s|$)")
_CJK = re.compile(r"[\u3400-\u9fff]")


# --- client keys --------------------------------------------------------------------------------------------


def open311_client_issue_key(*, client: Open311Client) -> str:
    """Give `client` a new key, saving a new client; returns the key, which is kept nowhere: only its digest is
    stored, so it can be shown once and never again. An existing client's old key stops working at once."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    client.key_hash = open311.key_digest(key)
    if client.pk is None:
        client.created_at = clock.now()
        client.save()
    else:
        client.save(update_fields=["key_hash"])
    logger.info("open311 client %s: key issued", client.pk)
    return key


@transaction.atomic
def open311_client_create(*, name: str) -> tuple[Open311Client, str]:
    name = name.strip()
    if not name:
        raise ApplicationError("请填写接入应用的名称。", code="required", extra={"field": "name"})
    if len(name) > NAME_MAX_LENGTH:
        raise ApplicationError(f"名称不能超过 {NAME_MAX_LENGTH} 个字。", code="too_long", extra={"field": "name"})
    client = Open311Client(name=name)
    return client, open311_client_issue_key(client=client)


@transaction.atomic
def open311_client_deactivate(*, client_id: int) -> Open311Client:
    client = Open311Client.objects.select_for_update().filter(pk=client_id).first()
    if client is None:
        raise NotFound("没有这个接入应用。")
    if client.is_active:
        client.is_active = False
        client.save(update_fields=["is_active"])
        logger.info("open311 client %s deactivated", client.pk)
    return client


# --- requests -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Open311RequestInput:
    """The fields of a GeoReport v2 POST, as the client sent them (text)."""

    service_code: str
    description: str = ""
    lat: str = ""
    long: str = ""
    address_string: str = ""
    address_id: str = ""
    email: str = ""
    phone: str = ""
    first_name: str = ""
    last_name: str = ""
    media_url: str = ""


def _refuse(field: str, message: str, code: str = "invalid") -> ApplicationError:
    return ApplicationError(message, code=code, extra={"field": field})


def _limit(field: str, value: str, limit: int) -> str:
    value = value.strip()
    if len(value) > limit:
        raise _refuse(field, f"不能超过 {limit} 个字。", "too_long")
    return value


def _coordinate(field: str, value: str, bound: int) -> Decimal:
    try:
        number = Decimal(value.strip())
    except InvalidOperation:
        raise _refuse(field, "应为十进制度数（WGS84），例如 41.796700。") from None
    if not number.is_finite() or not -bound <= number <= bound:
        raise _refuse(field, f"应在 -{bound} 到 {bound} 之间（WGS84）。")
    return number.quantize(Decimal("0.000001"))


def _place(data: Open311RequestInput) -> tuple[Decimal | None, Decimal | None, str, str]:
    lat, long = data.lat.strip(), data.long.strip()
    address = _limit("address_string", data.address_string, ADDRESS_MAX_LENGTH)
    address_id = _limit("address_id", data.address_id, ADDRESS_ID_MAX_LENGTH)
    if bool(lat) != bool(long):
        raise _refuse("lat" if not lat else "long", "lat 和 long 须同时提供。", "required")
    if not (lat or address or address_id):
        raise _refuse("address_string", "请提供位置：lat 和 long，或 address_string，或 address_id。", "required")
    latitude = _coordinate("lat", lat, 90) if lat else None
    longitude = _coordinate("long", long, 180) if long else None
    return latitude, longitude, address, address_id


def _location_text(latitude: Decimal | None, longitude: Decimal | None, address: str, address_id: str) -> str:
    parts = [address] if address else []
    if address_id:
        parts.append(f"地址编号 {address_id}")
    if latitude is not None and longitude is not None:
        parts.append(f"坐标 {latitude},{longitude}（WGS84）")
    return "；".join(parts)


def _caller_name(first: str, last: str) -> str:
    first = _limit("first_name", first, PERSON_NAME_MAX_LENGTH)
    last = _limit("last_name", last, PERSON_NAME_MAX_LENGTH)
    if _CJK.search(first + last):
        return f"{last}{first}"
    return " ".join(part for part in (first, last) if part)


def _contact(data: Open311RequestInput) -> tuple[str, str]:
    phone, email = data.phone.strip(), data.email.strip()
    if phone and not _PHONE.fullmatch(phone):
        raise _refuse("phone", "电话号码格式不正确。")
    if email:
        try:
            validate_email(email)
        except ValidationError:
            raise _refuse("email", "电子邮箱格式不正确。") from None
    return phone, email


def _media_url(value: str) -> str:
    url = _limit("media_url", value, MEDIA_URL_MAX_LENGTH)
    if url:
        try:
            URLValidator(schemes=["http", "https"])(url)
        except ValidationError:
            raise _refuse("media_url", "应为 http 或 https 链接。") from None
    return url


def title_from(description: str) -> str:
    """The first sentence, shortened: what a list of tickets shows of the request."""
    text = " ".join(description.split("\n", 1)[0].split()) or " ".join(description.split())
    first = _SENTENCE_END.split(text, maxsplit=1)[0].strip() or text
    return first if len(first) <= TITLE_MAX_LENGTH else first[: TITLE_MAX_LENGTH - 1] + "…"


@transaction.atomic
def open311_request_create(*, client: Open311Client, data: Open311RequestInput) -> Ticket:
    """A citizen's request filed by an Open311 client. The media URL is kept as a link in the text and never
    fetched: the hotline does not download what a request points at."""
    code = data.service_code.strip()
    if not code:
        raise _refuse("service_code", "请提供 service_code。", "required")
    service = open311.service_for_code(code)
    if service is None:
        raise NotFound(f"没有编码为 {code[:20]} 的服务。", code="unknown_service", extra={"field": "service_code"})
    description = data.description.strip()
    if not description:
        raise _refuse("description", "请填写诉求内容。", "required")
    if len(description) > DESCRIPTION_MAX_LENGTH:
        raise _refuse("description", f"不能超过 {DESCRIPTION_MAX_LENGTH} 个字。", "too_long")
    latitude, longitude, address, address_id = _place(data)
    phone, email = _contact(data)
    caller_name = _caller_name(data.first_name, data.last_name)
    media_url = _media_url(data.media_url)
    content = description + (f"\n\n图片或视频链接（群众提供，未下载）：{media_url}" if media_url else "")
    region = open311.region_for_address(address) if address else None
    ticket = ticket_create_public(
        data=TicketInput(
            hotline_line=settings.HOTLINE_LINES[0],
            channel=Channel.OPEN311,
            # A GeoReport request asks the city to deal with something: a request for help, which the
            # dispatcher may still correct.
            appeal_type=AppealType.HELP,
            title=title_from(description),
            content=content,
            category_id=int(service.code),
            region_id=region.id if region else None,
            location_text=_location_text(latitude, longitude, address, address_id),
            caller_name=caller_name,
            caller_phone=phone,
            extra={"open311_client": client.id},
        )
    )
    Open311Request.objects.create(
        ticket=ticket, client=client, latitude=latitude, longitude=longitude, address_id=address_id, email=email
    )
    Open311Client.objects.filter(pk=client.pk).update(last_used_at=clock.now())
    logger.info("open311 client %s filed ticket %s", client.pk, ticket.number)
    return ticket
