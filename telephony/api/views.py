"""The CTI API: any PBX drives the agent screen with call events over HTTP (token authentication).

Views validate input, call one service or selector, and serialize; nothing more.
"""

import logging
from typing import Any

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from hotline import clock
from hotline.api.serializers import StrictSerializer
from hotline.errors import NotFound, NotPermitted
from ticketing.models import User

from .. import agents, desk, selectors, services, voice
from ..models import Call, CallStatus
from . import serializers as s

DeskTicketRef = inline_serializer(
    name="DeskTicketRef", fields={"id": serializers.IntegerField(), "number": serializers.CharField()}
)

logger = logging.getLogger(__name__)


def _actor(request: Request) -> User:
    """The signed-in user (IsAuthenticated by default), who must be hotline centre staff or their PBX."""
    assert isinstance(request.user, User)
    if not selectors.may_drive_calls(request.user):
        raise NotPermitted("只有热线中心人员或其授权的交换机可以上报通话事件。")
    return request.user


def _call(call_uuid: str) -> Call:
    try:
        return selectors.call_by_uuid(call_uuid=call_uuid)
    except Call.DoesNotExist:
        raise NotFound("通话不存在。", extra={"call_id": call_uuid}) from None


class CtiEventView(APIView):
    """CTI 通话事件：振铃、接听、保持、转接、挂机。振铃时返回来电人的历史工单。"""

    @extend_schema(
        request=s.CtiEventInput,
        responses={200: s.CtiEventResultSerializer, 201: s.CtiEventResultSerializer},
        summary="上报 CTI 通话事件",
    )
    def post(self, request: Request) -> Response:
        actor = _actor(request)
        serializer = s.CtiEventInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        event = data["event"]
        body: dict[str, Any] = {"event": event}
        code: int = status.HTTP_200_OK
        if event == s.CtiEvent.RINGING:
            call, created = services.call_ring(
                call_uuid=data["call_id"],
                hotline_line=data["line"],
                caller_number=data["caller"],
                agent_id=data["agent"],
                agent_extension=data["agent_extension"],
            )
            code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
            previous = selectors.caller_previous_tickets(user=actor, phone=call.caller_number)
            body["previous_tickets"] = s.PreviousTicketSerializer(previous, many=True).data
        elif event == s.CtiEvent.ANSWERED:
            call = services.call_answer(call_id=_call(data["call_id"]).id)
        elif event == s.CtiEvent.HELD:
            call = services.call_hold(call_id=_call(data["call_id"]).id)
        elif event == s.CtiEvent.TRANSFERRED:
            call = services.call_transfer(
                call_id=_call(data["call_id"]).id, agent_id=data["agent"], agent_extension=data["agent_extension"]
            )
        else:
            call = services.call_end(call_id=_call(data["call_id"]).id, reason="hungup")
        body["call"] = s.CallSerializer(call).data
        return Response(body, status=code)


class CallPromptView(APIView):
    """让来电人听到一段语音：问候语、工单编号、查询码（逐位读出）或满意度问题。由接听该通话的接入端播放。"""

    @extend_schema(request=s.CallPromptInput, responses={202: s.CallPromptResultSerializer}, summary="向来电人播放语音")
    def post(self, request: Request, call_id: int) -> Response:
        actor = _actor(request)
        serializer = s.CallPromptInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        name = serializer.validated_data["prompt"]
        voice.call_prompt_request(call_id=call_id, actor=actor, prompt=name)
        return Response({"prompt": name, "queued": True}, status=status.HTTP_202_ACCEPTED)


class CallDetailView(APIView):
    """一次通话：会话信息、事件轨迹、转写内容、关联工单与来电人的历史工单（号码脱敏）。"""

    @extend_schema(responses={200: s.CallDetailSerializer}, summary="查看通话")
    def get(self, request: Request, call_id: int) -> Response:
        actor = _actor(request)
        call = selectors.call_detail(call_id=call_id)
        if call is None:
            raise NotFound("通话不存在。")
        context = {
            "ticket_visible": selectors.call_ticket_visible(call=call, user=actor),
            "previous_tickets": selectors.caller_previous_tickets(
                user=actor, phone=call.caller_number, exclude_ticket_id=call.ticket_id
            ),
        }
        return Response(s.CallDetailSerializer(call, context=context).data)


# --- agent states, live calls, the desk -------------------------------------------------------------------


class MyAgentStateView(APIView):
    """本人的坐席状态：空闲、通话中、话后处理、暂离。通话中由来电自动设置。"""

    @extend_schema(responses={200: s.AgentStateSerializer}, summary="查看本人坐席状态")
    def get(self, request: Request) -> Response:
        actor = _actor(request)
        return Response(s.AgentStateSerializer(selectors.agent_state_of(user=actor, now=clock.now())).data)

    @extend_schema(request=s.AgentStateInput, responses={200: s.AgentStateSerializer}, summary="切换本人坐席状态")
    def post(self, request: Request) -> Response:
        actor = _actor(request)
        serializer = s.AgentStateInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        agents.agent_state_set(actor=actor, state=serializer.validated_data["state"])
        return Response(s.AgentStateSerializer(selectors.agent_state_of(user=actor, now=clock.now())).data)


def _watcher(request: Request) -> User:
    assert isinstance(request.user, User)
    if not selectors.may_watch_agents(request.user):
        raise NotPermitted("只有督办、派单和管理人员可以查看全部坐席状态。")
    return request.user


class AgentStatesView(APIView):
    """全部坐席的当前状态（督办看板、派单员）。"""

    @extend_schema(
        responses={
            200: inline_serializer(
                name="AgentStates",
                fields={"now": serializers.DateTimeField(), "agents": s.AgentStateSerializer(many=True)},
            )
        },
        summary="坐席状态一览",
    )
    def get(self, request: Request) -> Response:
        _watcher(request)
        now = clock.now()
        views = selectors.agent_states(now=now)
        return Response({"now": now, "agents": s.AgentStateSerializer(views, many=True).data})


class LiveCallsView(APIView):
    """正在振铃、通话或保持的来电（号码脱敏）与排队数（振铃未接听）。"""

    @extend_schema(
        responses={
            200: inline_serializer(
                name="LiveCalls",
                fields={
                    "now": serializers.DateTimeField(),
                    "queue_length": serializers.IntegerField(),
                    "calls": s.LiveCallSerializer(many=True),
                },
            )
        },
        summary="实时通话与排队",
    )
    def get(self, request: Request) -> Response:
        _actor(request)
        now = clock.now()
        calls = selectors.live_calls(now=now)
        queue = sum(1 for call in calls if call.status == CallStatus.RINGING)
        return Response({"now": now, "queue_length": queue, "calls": s.LiveCallSerializer(calls, many=True).data})


class MyTicketsView(APIView):
    """本人受理的工单（工作清单），最近变动的在前；open=true 时只列未办结的。"""

    @extend_schema(
        parameters=[s.AgentTicketsQuery], responses={200: s.AgentTicketSerializer(many=True)}, summary="我的工单"
    )
    def get(self, request: Request) -> Response:
        actor = _actor(request)
        query = s.AgentTicketsQuery(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        tickets = selectors.agent_tickets(user=actor, open_only=query.validated_data["open"])
        return Response(s.AgentTicketSerializer(tickets, many=True).data)


class CallTicketView(APIView):
    """为没有工单的来电新建受理中工单（由工作台表单填写），并与通话关联。"""

    @extend_schema(request=s.CallTicketInput, responses={201: DeskTicketRef}, summary="为来电新建工单")
    def post(self, request: Request, call_id: int) -> Response:
        actor = _actor(request)
        call = selectors.call_detail(call_id=call_id)
        if call is None:
            raise NotFound("通话不存在。")
        serializer = s.CallTicketInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        ticket = desk.call_ticket_create(
            call_id=call.id, actor=actor, data=serializer.to_input(hotline_line=call.hotline_line)
        )
        return Response({"id": ticket.id, "number": ticket.number}, status=status.HTTP_201_CREATED)


def _desk_action(request: Request, input_class: type[StrictSerializer], act: Any) -> Response:
    actor = _actor(request)
    serializer = input_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    result = act(actor, serializer.validated_data)
    return Response(s.DeskResultSerializer(result).data)


class DeskInstantReplyView(APIView):
    """即时答复并办结；选用的知识库文章记为采用。"""

    @extend_schema(request=s.DeskInstantReplyInput, responses={200: s.DeskResultSerializer}, summary="即时答复")
    def post(self, request: Request, ticket_id: int) -> Response:
        return _desk_action(
            request,
            s.DeskInstantReplyInput,
            lambda actor, data: desk.desk_instant_reply(
                ticket_id=ticket_id, actor=actor, reply_text=data["reply_text"], article_id=data["article"]
            ),
        )


class DeskDispatchView(APIView):
    """提交并派单（主办、协办）：接听来电的话务员直接派单。"""

    @extend_schema(request=s.DeskDispatchInput, responses={200: s.DeskResultSerializer}, summary="派单")
    def post(self, request: Request, ticket_id: int) -> Response:
        return _desk_action(
            request,
            s.DeskDispatchInput,
            lambda actor, data: desk.desk_dispatch(
                ticket_id=ticket_id,
                actor=actor,
                lead_department_id=data["lead_department"],
                assisting_department_ids=data["assisting_departments"],
                note=data["note"],
            ),
        )


class DeskTransferView(APIView):
    """紧急转接（110/119/120/122）或告知法定途径（诉讼、仲裁、信访、信息公开）。"""

    @extend_schema(request=s.DeskTransferInput, responses={200: s.DeskResultSerializer}, summary="转外部")
    def post(self, request: Request, ticket_id: int) -> Response:
        return _desk_action(
            request,
            s.DeskTransferInput,
            lambda actor, data: desk.desk_transfer(
                ticket_id=ticket_id, actor=actor, target=data["target"], note=data["note"]
            ),
        )


class DeskMergeView(APIView):
    """重复来电并入已有工单。"""

    @extend_schema(request=s.DeskMergeInput, responses={200: s.DeskResultSerializer}, summary="并单")
    def post(self, request: Request, ticket_id: int) -> Response:
        return _desk_action(
            request,
            s.DeskMergeInput,
            lambda actor, data: desk.desk_merge(
                ticket_id=ticket_id, actor=actor, into_ticket_id=data["into_ticket"], note=data["note"]
            ),
        )
