"""The public site (网上诉求), for citizens on their phones, without an account.

- `/public/`: file a request, check its progress, search the service guides (`/kb/`).
- `/public/submit/`: the request form, a plain POST (no script needed), with the arithmetic challenge.
- `/public/status/`: the ticket number and query code (POSTed, so the code stays out of addresses and logs); the
  result shows the public timeline and the reply, kept current over `ws/public/tickets/<number>/` by public.js,
  and the rating form while the ticket waits for its callback (`/public/status/rate/`).

The pages go through the public API's own functions (`api.public_views.submit_request`, `lookup`) and the same
services, limits and lockout, so a page and the API answer alike. There is no list of published cases: tickets
have no flag by which a department chooses to publish one (docs/public.md).
"""

from collections.abc import Callable
from functools import wraps
from types import SimpleNamespace
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import translation
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST
from rest_framework.exceptions import ValidationError

from hotline.errors import ApplicationError

from .. import callbacks, public_guard, public_selectors
from ..api.callback_views import PublicRatingInput, PublicRatingThrottle, PublicRatingTicketThrottle
from ..api.public_views import (
    CONSENT_TEXT,
    NOT_FOUND_MESSAGE,
    NUMBER_MAX_LENGTH,
    PUBLIC_LANGUAGE,
    PublicSubmitInput,
    lookup,
    photo_limit_text,
    submit_request,
)
from ..models import AppealType, Satisfaction, Ticket
from ..public_guard import TooManyRequests
from ..services import PUBLIC_MAX_PHOTOS

# Fields of the form, in the order the page lists them (errors are listed in this order too).
FORM_FIELDS = [
    "appeal_type",
    "category",
    "region",
    "location",
    "title",
    "content",
    "photos",
    "name",
    "phone",
    "consent",
    "challenge_answer",
]
# What the services call a field, where the form calls it otherwise.
SERVICE_FIELDS = {"file": "photos", "location_text": "location", "caller_phone": "phone", "caller_name": "name"}
SATISFACTION_HELP = {
    Satisfaction.SATISFIED: "问题已解决，对答复满意",
    Satisfaction.FAIRLY_SATISFIED: "基本解决，还有小的不足",
    Satisfaction.DISSATISFIED: "问题没有解决，请重新办理（请说明原因）",
}


def in_chinese(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """The public site is Chinese whatever the browser's Accept-Language, DRF's and Django's messages too."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        with translation.override(PUBLIC_LANGUAGE):
            response = view(request, *args, **kwargs)
        response["Content-Language"] = PUBLIC_LANGUAGE
        return response

    return wrapper


@in_chinese
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "ticketing/public/home.html", {"active": "home"})


def _labels() -> dict[str, str]:
    fields = PublicSubmitInput().fields
    return {name: str(fields[name].label) for name in FORM_FIELDS}


def _messages(detail: Any) -> list[str]:
    """DRF's error detail of one field, flattened (a list field's errors are per item)."""
    if isinstance(detail, dict):
        return [message for value in detail.values() for message in _messages(value)]
    if isinstance(detail, list):
        return [message for value in detail for message in _messages(value)]
    return [str(detail)]


def _submission_data(request: HttpRequest) -> dict[str, Any]:
    data: dict[str, Any] = {name: value for name, value in request.POST.items() if name != "csrfmiddlewaretoken"}
    # Checkbox: absent when not ticked.
    data["consent"] = request.POST.get("consent") == "on"
    for name in ("category", "region"):
        if not data.get(name):
            data[name] = None
    data["photos"] = request.FILES.getlist("photos")
    return data


@in_chinese
@never_cache
@require_http_methods(["GET", "POST"])
def submit(request: HttpRequest) -> HttpResponse:
    errors: dict[str, list[str]] = {}
    general: list[str] = []
    status = 200
    if request.method == "POST":
        try:
            ticket = submit_request(request, _submission_data(request))
        except ValidationError as invalid:
            status = 400
            detail = invalid.detail if isinstance(invalid.detail, dict) else {"": invalid.detail}
            for name, messages in detail.items():
                if name in FORM_FIELDS:
                    errors[name] = _messages(messages)
                else:
                    # Not a field of the form (a hand-made request, or the token).
                    general.extend(f"{name}：{message}" for message in _messages(messages))
        except ApplicationError as refused:
            status = refused.status_code
            field = SERVICE_FIELDS.get(str(refused.extra.get("field")), str(refused.extra.get("field")))
            if field in FORM_FIELDS:
                errors[field] = [refused.message]
            else:
                general.append(refused.message)
        else:
            return render(
                request,
                "ticketing/public/submitted.html",
                {"active": "submit", "number": ticket.number, "query_code": ticket.query_code},
                status=201,
            )
    labels = _labels()
    summary = [(name, labels[name], message) for name in FORM_FIELDS for message in errors.get(name, [])]
    fields = {name: {"label": labels[name], "errors": errors.get(name, [])} for name in FORM_FIELDS}
    # A new question every time the form is shown: a token is good for one try only.
    challenge = public_guard.challenge_issue()
    context = {
        "active": "submit",
        "values": request.POST if request.method == "POST" else {},
        "errors": errors,
        "general": general,
        "summary": summary,
        "fields": fields,
        "appeal_types": AppealType.choices,
        "categories": public_selectors.public_categories(),
        "regions": public_selectors.public_regions(),
        "challenge": challenge,
        "consent_text": CONSENT_TEXT,
        "photo_limits": photo_limit_text(),
        "max_photos": PUBLIC_MAX_PHOTOS,
        "photo_max_bytes": settings.PUBLIC_PHOTO_MAX_BYTES,
        "photos_were_chosen": bool(request.FILES.getlist("photos")),
    }
    return render(request, "ticketing/public/submit.html", context, status=status)


def _status_form(request: HttpRequest, *, number: str = "", error: str = "", status: int = 200) -> HttpResponse:
    return render(
        request,
        "ticketing/public/status_form.html",
        {"active": "status", "number": number, "error": error},
        status=status,
    )


def _looked_up(request: HttpRequest, *, number: str, query_code: str) -> Ticket | HttpResponse:
    """The ticket, or the number form again with the reason (one message for a wrong code and an unknown
    number; another for limits and the lockout)."""
    try:
        return lookup(request, number=number, query_code=query_code)
    except ApplicationError as refused:
        return _status_form(request, number=number, error=refused.message, status=refused.status_code)


def _status_page(
    request: HttpRequest,
    *,
    ticket: Ticket,
    query_code: str,
    notice: str = "",
    rating_errors: dict[str, list[str]] | None = None,
    rating_values: dict[str, str] | None = None,
    status: int = 200,
) -> HttpResponse:
    view = public_selectors.ticket_public_status(ticket=ticket)
    config = {
        "number": view.number,
        "code": query_code,
        "socket_path": f"/ws/public/tickets/{view.number}/",
        "last_event_id": view.last_event_id,
        "seen": [update.event_id for update in view.timeline],
        "steps": public_selectors.STEP_LABELS,
        "rateable": str(public_selectors.RATEABLE),
    }
    context = {
        "active": "status",
        "view": view,
        "query_code": query_code,
        "timeline": [(update, public_selectors.STEP_LABELS.get(update.step, "")) for update in view.timeline],
        "config": config,
        "notice": notice,
        "satisfactions": [
            (value, label, SATISFACTION_HELP[Satisfaction(value)]) for value, label in Satisfaction.choices
        ],
        "rating_errors": rating_errors or {},
        "rating_values": rating_values or {},
    }
    return render(request, "ticketing/public/status.html", context, status=status)


@in_chinese
@never_cache
@require_http_methods(["GET", "POST"])
def status(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        # The number may come in the address (a link from the confirmation page); the code never does.
        return _status_form(request, number=request.GET.get("number", "")[:NUMBER_MAX_LENGTH])
    number = request.POST.get("number", "").strip()
    query_code = request.POST.get("code", "").strip()
    if not number or not query_code:
        return _status_form(request, number=number[:NUMBER_MAX_LENGTH], error="请填写工单编号和查询码。", status=400)
    ticket = _looked_up(request, number=number, query_code=query_code)
    if isinstance(ticket, HttpResponse):
        return ticket
    return _status_page(request, ticket=ticket, query_code=query_code)


@in_chinese
@never_cache
@require_POST
def rate(request: HttpRequest) -> HttpResponse:
    number = request.POST.get("number", "").strip()
    query_code = request.POST.get("code", "").strip()
    values = {"satisfaction": request.POST.get("satisfaction", ""), "comment": request.POST.get("comment", "")}
    if len(number) > NUMBER_MAX_LENGTH:
        # No number of ours; and the rating limit's key must stay short.
        return _status_form(request, error=NOT_FOUND_MESSAGE, status=404)
    try:
        # The rating API's limits, on the same counters.
        public_guard.throttle(
            [PublicRatingThrottle(), PublicRatingTicketThrottle()],
            message="评价过于频繁，",
            request=request,
            view=SimpleNamespace(kwargs={"number": number}),
        )
    except TooManyRequests as limited:
        return _status_form(request, number=number, error=limited.message, status=429)
    ticket = _looked_up(request, number=number, query_code=query_code)
    if isinstance(ticket, HttpResponse):
        return ticket
    rating = PublicRatingInput(data={"query_code": query_code, **values})
    errors: dict[str, list[str]] = {}
    if values["satisfaction"] not in Satisfaction.values:
        errors["satisfaction"] = ["请选择满意、基本满意或不满意。"]
    elif values["satisfaction"] == Satisfaction.DISSATISFIED and not values["comment"].strip():
        errors["comment"] = ["请写明不满意的原因，承办单位会据此重新办理。"]
    elif not rating.is_valid():
        for name, detail in rating.errors.items():
            errors.setdefault("comment" if name == "comment" else "satisfaction", []).extend(_messages(detail))
    else:
        try:
            callbacks.callback_public_rate(number=number, **rating.validated_data)
        except ApplicationError as refused:
            errors[str(refused.extra.get("field") or "satisfaction")] = [refused.message]
    if errors:
        return _status_page(
            request, ticket=ticket, query_code=query_code, rating_errors=errors, rating_values=values, status=400
        )
    notice = "感谢您的评价。"
    if values["satisfaction"] == Satisfaction.DISSATISFIED:
        notice += "您的诉求已交承办单位重新办理，办理情况会在本页更新。"
    return _status_page(request, ticket=ticket, query_code=query_code, notice=notice)
