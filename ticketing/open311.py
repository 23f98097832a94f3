"""Open311 GeoReport v2: how our categories and tickets look to Open311 clients, and the reads behind the
`/open311/v2/` endpoints (docs/open311.md).

- A service is an active second-level category, or an active first-level one without active children; its
  `service_code` is the category id and its `group` the first-level name. No service has extra attributes.
- A service request is a ticket, `service_request_id` its number. Anyone may read requests, so what they show is
  decided here, in one place, for the list and the single request alike (`requests_public`): which tickets
  appear, and which of their fields, with phone numbers, ID numbers, e-mail addresses and the caller's own name
  masked in any text. The caller's name, phone and e-mail fields never appear.
"""

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import CharField, F, Q, QuerySet, Value
from django.db.models.functions import Length

from .calendar import TZ
from .masking import mask_id_number, mask_name, mask_phone
from .models import AppealType, Category, Open311Client, Open311Request, Region, Ticket
from .realtime import PUBLIC_STATUS
from .selectors import category_tree
from .services import PUBLIC_CHANNELS
from .workflow import Status

SERVICE_TYPE = "realtime"
# GeoReport v2: a list covers at most 90 days and returns at most the first 1,000 requests.
LIST_WINDOW = timedelta(days=90)
LIST_LIMIT = 1000

# States a ticket reaches when its handling is over; every other public state is "open".
CLOSED_STATES = frozenset({Status.CLOSED, Status.MERGED, Status.CANCELLED, Status.TRANSFERRED})
# Never in the public lists: a draft is not filed yet; a cancelled request was withdrawn or refused (often as
# abuse); a transferred one went to the police, fire, ambulance or a legal route, which are not ours to publish.
HIDDEN_STATES = frozenset({Status.DRAFT, Status.CANCELLED, Status.TRANSFERRED})


# --- services -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Service:
    code: str
    name: str
    description: str
    keywords: str
    group: str


def _service(category: Category, group: Category) -> Service:
    own = category.id == group.id
    return Service(
        code=str(category.id),
        name=category.name,
        description=category.name if own else f"{group.name} / {category.name}",
        keywords=category.name if own else f"{category.name}, {group.name}",
        group=group.name,
    )


def services() -> list[Service]:
    """The services, in the order the categories are sorted."""
    found: list[Service] = []
    for top in category_tree():
        children = list(top.children.all())
        found.extend(_service(child, top) for child in children)
        if not children:
            found.append(_service(top, top))
    return found


def service_for_code(code: str) -> Service | None:
    return next((service for service in services() if service.code == code), None)


def service_row(service: Service) -> dict[str, Any]:
    return {
        "service_code": service.code,
        "service_name": service.name,
        "description": service.description,
        "metadata": False,
        "type": SERVICE_TYPE,
        "keywords": service.keywords,
        "group": service.group,
    }


def category_ids_for_codes(codes: Iterable[str]) -> dict[str, int | None]:
    """Each code with the id of the category it names (any category, active or not: old requests keep theirs),
    or None."""
    wanted = {code: int(code) if code.isdigit() and len(code) < 19 else None for code in codes}
    known = set(
        Category.objects.filter(id__in=[i for i in wanted.values() if i is not None]).values_list("id", flat=True)
    )
    return {code: (i if i in known else None) for code, i in wanted.items()}


# --- clients ------------------------------------------------------------------------------------------------


def key_digest(api_key: str) -> str:
    # Keys are long random strings, so a plain SHA-256 is enough to keep them unusable if the table leaks.
    return hashlib.sha256(api_key.encode()).hexdigest()


def client_for_key(api_key: str) -> Open311Client | None:
    """The active client the key belongs to; an unknown and a deactivated key look the same."""
    if not api_key or len(api_key) > 200:
        return None
    return Open311Client.objects.filter(key_hash=key_digest(api_key), is_active=True).first()


# --- which requests are public ------------------------------------------------------------------------------


def requests_public(*, client: Open311Client | None = None) -> QuerySet[Ticket]:
    """Requests anyone may read: filed (not drafts), not withdrawn or sent elsewhere, not from a caller who asked
    for confidentiality, and not whistle-blowing reports (举报), whose publication could expose the reporter.

    A client that sends its key also sees every request it filed itself, in any state but draft, so an app can
    tell its user that a request was withdrawn or transferred."""
    public = Q(caller_confidential=False) & ~Q(appeal_type=AppealType.REPORT) & ~Q(status__in=HIDDEN_STATES)
    if client is not None:
        public |= Q(open311__client=client) & ~Q(status=Status.DRAFT)
    return Ticket.objects.filter(public)


@dataclass(frozen=True)
class RequestFilters:
    # Ticket numbers; when given, every other filter is ignored (GeoReport v2).
    numbers: list[str] | None = None
    category_ids: list[int] | None = None
    start: datetime | None = None
    end: datetime | None = None
    # "open", "closed"; None: both.
    statuses: frozenset[str] | None = None


def request_list(*, filters: RequestFilters, client: Open311Client | None = None) -> list[Ticket]:
    """Newest first, at most LIST_LIMIT, in one query."""
    tickets = requests_public(client=client).select_related("category", "lead_department", "region", "open311")
    if filters.numbers is not None:
        tickets = tickets.filter(number__in=filters.numbers)
    else:
        if filters.category_ids is not None:
            tickets = tickets.filter(
                Q(category_id__in=filters.category_ids) | Q(category__parent_id__in=filters.category_ids)
            )
        if filters.start is not None:
            tickets = tickets.filter(created_at__gte=filters.start)
        if filters.end is not None:
            tickets = tickets.filter(created_at__lte=filters.end)
        if filters.statuses is not None and len(filters.statuses) == 1:
            closed = Q(status__in=CLOSED_STATES)
            tickets = tickets.filter(closed if "closed" in filters.statuses else ~closed)
    return list(tickets.order_by("-created_at", "-id")[:LIST_LIMIT])


def request_get(*, number: str, client: Open311Client | None = None) -> Ticket | None:
    return (
        requests_public(client=client)
        .select_related("category", "lead_department", "region", "open311")
        .filter(number=number)
        .first()
    )


# --- what a request shows -----------------------------------------------------------------------------------


def open311_status(status: str) -> str:
    return "closed" if status in CLOSED_STATES else "open"


def w3c_datetime(value: datetime | None) -> str | None:
    return value.astimezone(TZ).isoformat(timespec="seconds") if value else None


def _submission(ticket: Ticket) -> Open311Request | None:
    try:
        return ticket.open311
    except Open311Request.DoesNotExist:
        return None


def _coordinate(value: Decimal | None) -> float | None:
    return float(value) if value is not None else None


def request_row(ticket: Ticket) -> dict[str, Any]:
    """One request as GeoReport v2 lists it, fields in the specification's order.

    What the citizen wrote through a public channel (site, app, WeChat, Open311) was written to be filed in the
    open: its text and place are shown, masked. What an agent took down on a call was said to the hotline in
    confidence: only its title (a summary) and its region are shown."""
    own_text = ticket.channel in PUBLIC_CHANNELS
    submission = _submission(ticket)
    closed = open311_status(ticket.status) == "closed"
    names = [ticket.caller_name]
    if own_text:
        address = mask_personal_data(ticket.location_text, names=names) or None
    else:
        address = ticket.region.name if ticket.region else None
    notice = None
    if not closed and ticket.reply_due_at and ticket.lead_department:
        notice = f"承办单位应于{ticket.reply_due_at.astimezone(TZ):%Y年%m月%d日 %H:%M}前答复。"
    return {
        "service_request_id": ticket.number,
        "status": open311_status(ticket.status),
        "status_notes": PUBLIC_STATUS[Status(ticket.status)],
        "service_name": ticket.category.name if ticket.category else None,
        "service_code": str(ticket.category_id) if ticket.category_id else None,
        "description": mask_personal_data(ticket.content if own_text else ticket.title, names=names) or None,
        "agency_responsible": ticket.lead_department.name if ticket.lead_department else None,
        "service_notice": notice,
        "requested_datetime": w3c_datetime(ticket.created_at),
        "updated_datetime": w3c_datetime((ticket.closed_at if closed else None) or ticket.updated_at),
        "expected_datetime": w3c_datetime(ticket.reply_due_at),
        "address": address,
        "address_id": (submission.address_id or None) if submission else None,
        "zipcode": None,
        "lat": _coordinate(submission.latitude) if submission else None,
        "long": _coordinate(submission.longitude) if submission else None,
        "media_url": None,
    }


def created_notice(ticket: Ticket) -> str:
    """What the filing app shows its user: GeoReport v2 has no field for our query code, so it is said here."""
    return (
        f"您的诉求已受理，工单编号：{ticket.number}，查询码：{ticket.query_code}。"
        "请妥善保存查询码：凭工单编号和查询码可在网站或拨打热线查询办理进度、评价答复。"
    )


# --- personal data in text ----------------------------------------------------------------------------------

_ID_NUMBER = re.compile(r"(?<![0-9A-Za-z])(?:[1-9][0-9]{16}[0-9Xx]|[1-9][0-9]{14})(?![0-9A-Za-z])")
_MOBILE = re.compile(r"(?<![0-9])(?:\+?86[- ]?)?1[3-9][0-9](?:[- ]?[0-9]{4}){2}(?![0-9])")
_LANDLINE = re.compile(r"(?<![0-9])0[1-9][0-9]{1,2}[- ]?[1-9][0-9]{6,7}(?:-[0-9]{1,5})?(?![0-9])")
# A local number without its area code is told from other numbers only by the word before it.
_LOCAL_NUMBER = re.compile(r"((?:电话|手机|号码|联系方式|座机)[:：是为]?\s*)([0-9]{7,8})(?![0-9])")
_EMAIL = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*(@[A-Za-z0-9.-]+\.[A-Za-z]{2,})")


def mask_personal_data(text: str, *, names: Iterable[str] = ()) -> str:
    """`text` with ID numbers, phone numbers, e-mail addresses and the given names masked (the ticketing.masking
    forms). Other people's names cannot be told from ordinary words; docs/open311.md says so."""
    text = _ID_NUMBER.sub(lambda m: mask_id_number(m.group()), text)
    text = _MOBILE.sub(lambda m: mask_phone(m.group()), text)
    text = _LANDLINE.sub(lambda m: mask_phone(m.group()), text)
    text = _LOCAL_NUMBER.sub(lambda m: m.group(1) + mask_phone(m.group(2)), text)
    text = _EMAIL.sub(lambda m: f"{m.group(1)}***{m.group(2)}", text)
    for name in sorted({n.strip() for n in names if len(n.strip()) >= 2}, key=len, reverse=True):
        text = text.replace(name, mask_name(name))
    return text.strip()


# --- places -------------------------------------------------------------------------------------------------


def region_for_address(address: str) -> Region | None:
    """The region an address names, when that is clear: the deepest region whose name appears in it, preferring
    one whose ancestors are named too (两个 和平区 in two cities); None when two remain equally good."""
    address = address.strip()
    if not address:
        return None
    matched = {
        region.id: region
        for region in Region.objects.alias(address=Value(address, output_field=CharField()))
        .alias(name_length=Length("name"))
        .filter(address__contains=F("name"), name_length__gte=2)
    }
    if not matched:
        return None

    def named_ancestors(region: Region) -> int:
        count, parent_id = 0, region.parent_id
        while parent_id in matched:
            count += 1
            parent_id = matched[parent_id].parent_id
        return count

    ranked = sorted(matched.values(), key=lambda r: (r.level, named_ancestors(r)), reverse=True)
    best = ranked[0]
    if len(ranked) > 1 and (ranked[1].level, named_ancestors(ranked[1])) == (best.level, named_ancestors(best)):
        return None
    return best
