"""The ticket API. Views validate input, call one service or selector, and serialize; nothing more."""

from collections.abc import Callable
from typing import Any

from django.db.models import QuerySet
from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from hotline import clock
from hotline.errors import ApplicationError

from .. import selectors, services
from ..models import Department, Region, Ticket, User
from ..workflow import Transition
from . import serializers as s

IDEMPOTENCY_HEADER = "Idempotency-Key"

# One endpoint per transition. Each input serializer's validated fields are named like the keyword
# arguments of the service `ticket_<transition>`, which the endpoint calls with them.
TRANSITION_INPUTS: dict[Transition, type[serializers.Serializer]] = {
    Transition.SUBMIT: s.EmptyInput,
    Transition.INSTANT_REPLY: s.InstantReplyInput,
    Transition.DISPATCH: s.DispatchInput,
    Transition.ACCEPT: s.EmptyInput,
    Transition.RETURN: s.ReasonInput,
    Transition.APPROVE_RETURN: s.NoteInput,
    Transition.REJECT_RETURN: s.ReasonInput,
    Transition.REASSIGN: s.ReassignInput,
    Transition.REQUEST_EXTENSION: s.ExtensionRequestInput,
    Transition.APPROVE_EXTENSION: s.NoteInput,
    Transition.REJECT_EXTENSION: s.RequiredNoteInput,
    Transition.SUSPEND: s.ReasonInput,
    Transition.RESUME: s.NoteInput,
    Transition.REPLY: s.ReplyInput,
    Transition.APPROVE_REPLY: s.EmptyInput,
    Transition.REJECT_REPLY: s.ReasonInput,
    Transition.CLOSE: s.CloseInput,
    Transition.REOPEN: s.ReopenInput,
    Transition.MERGE: s.MergeInput,
    Transition.TRANSFER: s.TransferInput,
    Transition.CANCEL: s.ReasonInput,
}
assert set(TRANSITION_INPUTS) == set(Transition)


def transition_service(transition: Transition) -> Callable[..., Ticket]:
    service: Callable[..., Ticket] = getattr(services, f"ticket_{transition.value}")
    return service


TransitionResultSerializer = inline_serializer(
    name="TransitionResult",
    fields={"id": serializers.IntegerField(), "number": serializers.CharField(), "status": serializers.CharField()},
)


def _actor(request: Request) -> User:
    """The signed-in user; every view here requires authentication (IsAuthenticated by default)."""
    assert isinstance(request.user, User)
    return request.user


def _ticket_id(pk: str | None) -> int:
    try:
        return int(pk or "")
    except ValueError:
        raise Http404 from None


class TicketViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """工单：受理、查询、流转。`status` 只能通过 transitions/* 接口改变。"""

    lookup_value_regex = r"[0-9]+"
    serializer_class = s.TicketListSerializer

    def get_queryset(self) -> QuerySet[Ticket]:
        query = s.TicketListQuerySerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        q = query.validated_data
        filters = selectors.TicketFilters(
            status=sorted(q["status"]) if q.get("status") else None,
            hotline_line=q.get("hotline_line"),
            channel=q.get("channel"),
            appeal_type=q.get("appeal_type"),
            urgency=q.get("urgency"),
            category_id=q.get("category"),
            department_id=q.get("department"),
            region_id=q.get("region"),
            created_after=q.get("created_after"),
            created_before=q.get("created_before"),
            overdue=q.get("overdue"),
            search=q.get("search"),
        )
        return selectors.ticket_list(user=_actor(self.request), filters=filters, now=clock.now())

    def _detail_response(self, request: Request, ticket_id: int, *, status_code: int = 200) -> Response:
        try:
            ticket = selectors.ticket_detail(user=_actor(request), ticket_id=ticket_id)
        except Ticket.DoesNotExist:
            raise Http404 from None
        body = s.TicketDetailSerializer(ticket, context={"request": request}).data
        return Response(body, status=status_code)

    @extend_schema(
        parameters=[s.TicketListQuerySerializer],
        responses=s.TicketListSerializer(many=True),
        summary="工单列表（按角色与单位过滤）",
    )
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)

    @extend_schema(responses=s.TicketDetailSerializer, summary="工单详情")
    def retrieve(self, request: Request, pk: str | None = None) -> Response:
        return self._detail_response(request, _ticket_id(pk))

    @extend_schema(
        request=s.TicketCreateSerializer,
        responses={201: s.TicketDetailSerializer},
        parameters=[
            OpenApiParameter(
                IDEMPOTENCY_HEADER,
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                description=(
                    "重试安全：同一用户同一键只会生成一张工单，重放时返回首次结果并带 Idempotent-Replayed: true。"
                ),
            )
        ],
        summary="受理（新建工单）",
    )
    def create(self, request: Request) -> Response:
        serializer = s.TicketCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data, draft = serializer.to_input()
        key = request.headers.get(IDEMPOTENCY_HEADER, "").strip()
        if len(key) > 128:
            raise ApplicationError("Idempotency-Key 不能超过 128 个字符。", code="idempotency_key_too_long")
        if key:
            ticket, created = services.ticket_create_idempotent(
                idempotency_key=key,
                data=data,
                actor=_actor(request),
                draft=draft,
            )
        else:
            ticket, created = services.ticket_create(data=data, actor=_actor(request), draft=draft), True
        response = self._detail_response(request, ticket.id, status_code=status.HTTP_201_CREATED)
        if not created:
            response["Idempotent-Replayed"] = "true"
        return response

    @extend_schema(
        request=s.TicketUpdateSerializer, responses=s.TicketDetailSerializer, summary="修改受理内容（受理中或待派单）"
    )
    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        serializer = s.TicketUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        ticket = services.ticket_update(
            ticket_id=_ticket_id(pk), actor=_actor(request), changes=serializer.to_changes()
        )
        return self._detail_response(request, ticket.id)

    @extend_schema(
        parameters=[OpenApiParameter("after", OpenApiTypes.INT, description="只返回此流转记录编号之后的记录")],
        responses=s.TicketEventSerializer(many=True),
        summary="全程留痕（流转记录）",
    )
    # Not paginated: the whole trail is returned, so the schema must not promise a page.
    @action(detail=True, methods=["get"], pagination_class=None)
    def timeline(self, request: Request, pk: str | None = None) -> Response:
        after = request.query_params.get("after")
        # isdigit() alone accepts "²", which int() then refuses.
        if after is not None and not (after.isascii() and after.isdigit()):
            raise ApplicationError("after 必须是非负整数。", code="invalid", extra={"field": "after"})
        try:
            events = selectors.ticket_timeline(
                user=_actor(request),
                ticket_id=_ticket_id(pk),
                after_id=int(after) if after else None,
            )
        except Ticket.DoesNotExist:
            raise Http404 from None
        return Response(s.TicketEventSerializer(events, many=True).data)

    @extend_schema(request=None, responses=s.ContactSerializer, summary="查看来电人完整联系方式（留痕）")
    @action(detail=True, methods=["post"])
    def contact(self, request: Request, pk: str | None = None) -> Response:
        contact = services.ticket_contact_reveal(ticket_id=_ticket_id(pk), actor=_actor(request))
        return Response(s.ContactSerializer(contact).data)


def _transition_action(transition: Transition) -> Callable[..., Response]:
    input_serializer = TRANSITION_INPUTS[transition]
    service = transition_service(transition)

    def handler(self: TicketViewSet, request: Request, pk: str | None = None) -> Response:
        serializer = input_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        ticket = service(ticket_id=_ticket_id(pk), actor=_actor(request), **serializer.validated_data)
        try:
            return self._detail_response(request, ticket.id)
        except Http404:
            # The transition took the ticket out of the actor's sight (a department returned it).
            return Response(
                {"id": ticket.id, "number": ticket.number, "status": ticket.status}, status=status.HTTP_202_ACCEPTED
            )

    # The router maps the HTTP method to the function's name, so it is named before @action sees it.
    handler.__name__ = f"transition_{transition.value}"
    routed = action(
        detail=True,
        methods=["post"],
        url_path=f"transitions/{transition.value}",
        url_name=f"transition-{transition.value}",
    )(handler)
    return extend_schema(
        request=input_serializer,
        responses={200: s.TicketDetailSerializer, 202: TransitionResultSerializer},
        summary=str(transition.label),
        operation_id=f"tickets_transition_{transition.value}",
    )(routed)


for _transition in Transition:
    setattr(TicketViewSet, f"transition_{_transition.value}", _transition_action(_transition))


class CategoryViewSet(viewsets.GenericViewSet):
    serializer_class = s.CategoryTreeSerializer

    @extend_schema(responses=s.CategoryTreeSerializer(many=True), summary="诉求分类树")
    def list(self, request: Request) -> Response:
        return Response(s.CategoryTreeSerializer(selectors.category_tree(), many=True).data)


class DepartmentViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    serializer_class = s.DepartmentSerializer

    def get_queryset(self) -> QuerySet[Department]:
        accepts = self.request.query_params.get("accepts_dispatch")
        return selectors.department_list(accepts_dispatch=None if accepts is None else accepts in ("1", "true"))


class RegionViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    serializer_class = s.RegionSerializer

    def get_queryset(self) -> QuerySet[Region]:
        params = self.request.query_params
        try:
            parent = int(params["parent"]) if "parent" in params else None
            level = int(params["level"]) if "level" in params else None
        except ValueError:
            raise ApplicationError("parent 与 level 必须是整数。", code="invalid") from None
        return selectors.region_list(parent_id=parent, level=level)


class MeView(APIView):
    @extend_schema(responses=s.MeSerializer, summary="当前用户")
    def get(self, request: Request) -> Response:
        return Response(s.MeSerializer(request.user).data)
