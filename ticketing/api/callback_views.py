"""Callback work (回访) for the hotline centre, and the citizens' own rating.

`/api/v1/callbacks/` lists tasks with the caller's phone masked; the number to dial is revealed through
`POST /api/v1/tickets/{id}/contact/`, which is on the trail. `/api/v1/public/tickets/{number}/rating/`
answers anyone, throttled per client address and per ticket so that query codes cannot be guessed.
Views validate input, call one service or selector, and serialize; nothing more.
"""

from datetime import datetime
from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import AllowAny, BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView

from hotline import clock
from hotline.api.serializers import StrictSerializer
from hotline.errors import NotFound

from .. import callback_selectors as selectors
from .. import callbacks, public_guard, public_selectors
from ..masking import mask_name, mask_phone
from ..models import CallbackMethod, CallbackStatus, CallbackTask, Satisfaction, User
from ..realtime import PUBLIC_STATUS
from ..workflow import Status


def _actor(request: Request) -> User:
    assert isinstance(request.user, User)
    return request.user


def _task_id(pk: str | None) -> int:
    try:
        return int(pk or "")
    except ValueError:
        raise Http404 from None


class MayDoCallbacks(BasePermission):
    message = "只有热线中心人员可以回访。"

    def has_permission(self, request: Request, view: Any) -> bool:
        return isinstance(request.user, User) and selectors.may_do_callbacks(request.user)


# --- serializers ------------------------------------------------------------------------------------------


class CallbackListQuery(StrictSerializer):
    status = serializers.MultipleChoiceField(
        choices=CallbackStatus.choices, required=False, help_text="默认：待回访与回访中。"
    )
    method = serializers.ChoiceField(choices=CallbackMethod.choices, required=False)
    mine = serializers.BooleanField(required=False, default=False, help_text="只看本人领取或记录的任务。")
    page = serializers.IntegerField(min_value=1, required=False)
    page_size = serializers.IntegerField(min_value=1, max_value=200, required=False)
    format = serializers.CharField(max_length=10, required=False)


class CallbackTaskSerializer(serializers.ModelSerializer):
    """A task as the agents' list shows it: the caller's phone and name masked (empty when confidential)."""

    status_display = serializers.CharField(source="get_status_display", read_only=True)
    method_display = serializers.CharField(source="get_method_display", read_only=True)
    ticket = serializers.SerializerMethodField()
    caller_phone = serializers.SerializerMethodField()
    caller_name = serializers.SerializerMethodField()
    assigned_to = serializers.SerializerMethodField()
    overdue = serializers.SerializerMethodField()
    mine = serializers.SerializerMethodField()

    class Meta:
        model = CallbackTask
        fields = [
            "id",
            "ticket",
            "method",
            "method_display",
            "status",
            "status_display",
            "assigned_to",
            "mine",
            "attempts",
            "created_at",
            "due_at",
            "overdue",
            "started_at",
            "finished_at",
            "satisfaction",
            "comment",
            "caller_phone",
            "caller_name",
        ]
        read_only_fields = fields

    def get_ticket(self, task: CallbackTask) -> dict[str, Any]:
        ticket = task.ticket
        department = ticket.lead_department
        return {
            "id": ticket.id,
            "number": ticket.number,
            "status": ticket.status,
            "title": ticket.title,
            "reply_text": ticket.reply_text,
            "reply_result": ticket.reply_result,
            "replied_at": ticket.replied_at,
            "lead_department": department.name if department else None,
            "caller_confidential": ticket.caller_confidential,
        }

    def get_caller_phone(self, task: CallbackTask) -> str:
        return "" if task.ticket.caller_confidential else mask_phone(task.ticket.caller_phone)

    def get_caller_name(self, task: CallbackTask) -> str:
        return "" if task.ticket.caller_confidential else mask_name(task.ticket.caller_name)

    def get_assigned_to(self, task: CallbackTask) -> dict[str, Any] | None:
        user = task.assigned_to
        return None if user is None else {"id": user.id, "name": str(user)}

    def get_overdue(self, task: CallbackTask) -> bool:
        now: datetime = self.context["now"]
        return bool(
            task.status in (CallbackStatus.PENDING, CallbackStatus.CALLING) and task.due_at and task.due_at < now
        )

    def get_mine(self, task: CallbackTask) -> bool:
        return bool(task.assigned_to_id == self.context["request"].user.id)


class RecordInput(StrictSerializer):
    satisfaction = serializers.ChoiceField(choices=Satisfaction.choices)
    comment = serializers.CharField(max_length=1000, required=False, allow_blank=True, default="")


class EmptyInput(StrictSerializer):
    pass


class PublicRatingInput(StrictSerializer):
    query_code = serializers.CharField(max_length=8)
    satisfaction = serializers.ChoiceField(choices=Satisfaction.choices)
    comment = serializers.CharField(max_length=1000, required=False, allow_blank=True, default="")


class PublicRatingResult(serializers.Serializer):
    number = serializers.CharField()
    status = serializers.CharField()
    status_display = serializers.CharField()
    satisfaction = serializers.CharField()


# --- staff ------------------------------------------------------------------------------------------------


class CallbackTaskViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """回访任务：列表（来电号码脱敏）、领取、退回、记录回访结果、记录无法联系。拨打前通过
    POST /tickets/{id}/contact/ 查看完整号码（留痕）。"""

    lookup_value_regex = r"[0-9]+"
    serializer_class = CallbackTaskSerializer
    permission_classes = [MayDoCallbacks]

    def get_queryset(self) -> QuerySet[CallbackTask]:
        query = CallbackListQuery(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        q = query.validated_data
        filters = selectors.CallbackFilters(
            status=sorted(q["status"]) if q.get("status") else None, method=q.get("method"), mine=q["mine"]
        )
        return selectors.callback_task_list(user=_actor(self.request), filters=filters)

    def get_serializer_context(self) -> dict[str, Any]:
        return {**super().get_serializer_context(), "now": clock.now()}

    def _task_response(self, request: Request, task_id: int) -> Response:
        try:
            task = selectors.callback_task_get(user=_actor(request), task_id=task_id)
        except CallbackTask.DoesNotExist:
            raise Http404 from None
        return Response(CallbackTaskSerializer(task, context=self.get_serializer_context()).data)

    @extend_schema(parameters=[CallbackListQuery], responses=CallbackTaskSerializer(many=True), summary="回访任务列表")
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)

    @extend_schema(responses=CallbackTaskSerializer, summary="回访任务详情")
    def retrieve(self, request: Request, pk: str | None = None) -> Response:
        return self._task_response(request, _task_id(pk))

    @extend_schema(request=EmptyInput, responses=CallbackTaskSerializer, summary="领取回访任务（他人已领取时 409）")
    @action(detail=True, methods=["post"])
    def claim(self, request: Request, pk: str | None = None) -> Response:
        EmptyInput(data=request.data).is_valid(raise_exception=True)
        task = callbacks.callback_claim(task_id=_task_id(pk), actor=_actor(request))
        return self._task_response(request, task.id)

    @extend_schema(request=EmptyInput, responses=CallbackTaskSerializer, summary="退回回访任务")
    @action(detail=True, methods=["post"])
    def release(self, request: Request, pk: str | None = None) -> Response:
        EmptyInput(data=request.data).is_valid(raise_exception=True)
        task = callbacks.callback_release(task_id=_task_id(pk), actor=_actor(request))
        return self._task_response(request, task.id)

    @extend_schema(
        request=RecordInput,
        responses=CallbackTaskSerializer,
        summary="记录回访结果：满意、基本满意办结；不满意（须说明原因）退回原主办单位重办",
    )
    @action(detail=True, methods=["post"])
    def record(self, request: Request, pk: str | None = None) -> Response:
        serializer = RecordInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        task = callbacks.callback_record(task_id=_task_id(pk), actor=_actor(request), **serializer.validated_data)
        return self._task_response(request, task.id)

    @extend_schema(
        request=EmptyInput, responses=CallbackTaskSerializer, summary="记录无法联系（达到次数上限后按联系不上办结）"
    )
    @action(detail=True, methods=["post"])
    def unreachable(self, request: Request, pk: str | None = None) -> Response:
        EmptyInput(data=request.data).is_valid(raise_exception=True)
        task = callbacks.callback_unreachable(task_id=_task_id(pk), actor=_actor(request))
        return self._task_response(request, task.id)


# --- the public -------------------------------------------------------------------------------------------


class _ConfiguredRateThrottle(SimpleRateThrottle):
    """Rates read from settings when a request comes (DRF binds them at import), so a deployment or a test
    that changes REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] is obeyed."""

    def get_rate(self) -> str | None:
        rates = settings.REST_FRAMEWORK.get("DEFAULT_THROTTLE_RATES") or {}
        rate = rates.get(self.scope or "") if isinstance(rates, dict) else None
        return str(rate) if rate else None


class PublicRatingThrottle(_ConfiguredRateThrottle):
    """Per client address."""

    scope = "public_rating"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class PublicRatingTicketThrottle(_ConfiguredRateThrottle):
    """Per ticket number, whatever the address: many addresses together cannot guess one ticket's code."""

    scope = "public_rating_ticket"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        number = str(view.kwargs.get("number", ""))
        return self.cache_format % {"scope": self.scope, "ident": number}


class PublicRatingView(APIView):
    """群众网上评价：凭工单编号与查询码，对待回访工单的答复作出满意、基本满意或不满意评价（不满意须说明原因）。"""

    # Anyone may rate; no session is looked at, so there is nothing for CSRF to protect here.
    authentication_classes: list[type] = []
    permission_classes = [AllowAny]
    throttle_classes = [PublicRatingThrottle, PublicRatingTicketThrottle]

    @extend_schema(request=PublicRatingInput, responses=PublicRatingResult, summary="群众评价答复", auth=[])
    def post(self, request: Request, number: str) -> Response:
        serializer = PublicRatingInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        # The status look-up's limits and lockout first: a wrong code here counts as one there, so rating is
        # no cheaper a way to guess codes than looking up.
        found = public_selectors.public_ticket_lookup(
            number=number,
            query_code=serializer.validated_data["query_code"],
            address=public_guard.client_address(request),
        )
        if found is None:
            raise NotFound("工单编号或查询码不正确。", code="ticket_not_found")
        task = callbacks.callback_public_rate(number=number, **serializer.validated_data)
        ticket = task.ticket
        ticket.refresh_from_db(fields=["status"])
        body = {
            "number": ticket.number,
            "status": ticket.status,
            "status_display": PUBLIC_STATUS[Status(ticket.status)],
            "satisfaction": task.satisfaction,
        }
        return Response(PublicRatingResult(body).data)
