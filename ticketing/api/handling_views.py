"""Handling a ticket beside its transitions: handing it to a sub-unit, the assisting departments' parts,
attachments, internal notes; and the department workbench's inbox. Views validate input, call one service or
selector, and serialize; nothing more."""

import logging
from collections.abc import Iterable

from django.http import FileResponse, Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import BaseParser, FormParser, MultiPartParser
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from hotline import clock
from hotline.errors import NotFound, NotPermitted

from .. import services, workbench_selectors
from ..models import DEPARTMENT_ROLES, Department, Ticket, TicketAttachment, User
from . import handling_serializers as h
from .serializers import TicketEventSerializer

logger = logging.getLogger(__name__)


def _actor(request: Request) -> User:
    """The signed-in user; every view here requires authentication (IsAuthenticated by default)."""
    assert isinstance(request.user, User)
    return request.user


def _handling_response(request: Request, ticket_id: int) -> Response:
    try:
        handling = workbench_selectors.ticket_handling(user=_actor(request), ticket_id=ticket_id)
    except Ticket.DoesNotExist:
        raise Http404 from None
    return Response(h.HandlingSerializer(handling).data)


class HandlingView(APIView):
    @extend_schema(responses=h.HandlingSerializer, summary="办理信息（承办科室、可交办单位、协办意见、附件、延期）")
    def get(self, request: Request, ticket_id: int) -> Response:
        return _handling_response(request, ticket_id)


class HandToUnitView(APIView):
    @extend_schema(
        request=h.HandToUnitInput,
        responses=h.HandlingSerializer,
        summary="交办下级单位（主办单位；unit 为 null 时收回）",
    )
    def post(self, request: Request, ticket_id: int) -> Response:
        serializer = h.HandToUnitInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.ticket_hand_to_unit(
            ticket_id=ticket_id,
            actor=_actor(request),
            unit_id=serializer.validated_data["unit"],
            note=serializer.validated_data["note"],
        )
        return _handling_response(request, ticket_id)


class AssistingRepliesView(APIView):
    @extend_schema(responses=h.AssistingReplySerializer(many=True), summary="协办意见")
    def get(self, request: Request, ticket_id: int) -> Response:
        try:
            replies = workbench_selectors.ticket_assisting_replies(user=_actor(request), ticket_id=ticket_id)
        except Ticket.DoesNotExist:
            raise Http404 from None
        return Response(h.AssistingReplySerializer(replies, many=True).data)

    @extend_schema(
        request=h.AssistingReplyInput,
        responses={201: h.AssistingReplySerializer},
        summary="填写协办意见（协办单位）",
    )
    def post(self, request: Request, ticket_id: int) -> Response:
        serializer = h.AssistingReplyInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        part = services.ticket_assisting_reply_add(
            ticket_id=ticket_id,
            actor=_actor(request),
            department_id=serializer.validated_data["department"],
            text=serializer.validated_data["text"],
        )
        return Response(h.AssistingReplySerializer(part).data, status=status.HTTP_201_CREATED)


class AttachmentsView(APIView):
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(responses=h.AttachmentSerializer(many=True), summary="附件列表")
    def get(self, request: Request, ticket_id: int) -> Response:
        try:
            attachments = workbench_selectors.ticket_attachments(user=_actor(request), ticket_id=ticket_id)
        except Ticket.DoesNotExist:
            raise Http404 from None
        return Response(h.AttachmentSerializer(attachments, many=True).data)

    @extend_schema(
        request={"multipart/form-data": h.AttachmentUploadInput},
        responses={201: h.AttachmentSerializer},
        summary="上传附件（类型按文件内容识别）",
    )
    def post(self, request: Request, ticket_id: int) -> Response:
        serializer = h.AttachmentUploadInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        upload = serializer.validated_data["file"]
        max_bytes, _types = services.attachment_limits()
        # One byte more than allowed is enough for the service to refuse a large file, without reading
        # all of it into memory.
        data = upload.read(max_bytes + 1)
        content_type = upload.content_type or ""
        if data and len(data) <= max_bytes:
            content_type = h.sniffed_content_type(data, declared=content_type, name=upload.name or "")
        attachment = services.ticket_attachment_add(
            ticket_id=ticket_id,
            actor=_actor(request),
            name=upload.name or "",
            content_type=content_type,
            data=data,
        )
        return Response(h.AttachmentSerializer(attachment).data, status=status.HTTP_201_CREATED)


class _AnyAccept(BaseContentNegotiation):
    """A download is the file whatever the client's Accept header says."""

    def select_parser(self, request: Request, parsers: Iterable[BaseParser]) -> BaseParser | None:
        return next(iter(parsers), None)

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        renderer = next(iter(renderers))
        return renderer, renderer.media_type


class AttachmentDownloadView(APIView):
    content_negotiation_class = _AnyAccept

    @extend_schema(
        responses={(200, "application/octet-stream"): OpenApiResponse(OpenApiTypes.BINARY)},
        summary="下载附件（可查看该工单的用户）",
    )
    def get(self, request: Request, ticket_id: int, attachment_id: int) -> FileResponse:
        try:
            attachment = workbench_selectors.ticket_attachment(
                user=_actor(request), ticket_id=ticket_id, attachment_id=attachment_id
            )
        except TicketAttachment.DoesNotExist:
            raise Http404 from None
        try:
            handle = attachment.file.open("rb")
        except FileNotFoundError:
            logger.error("attachment %s of ticket %s: stored file is missing", attachment.id, ticket_id)
            raise NotFound("附件文件已丢失，请联系系统管理员。", code="attachment_file_missing") from None
        response = FileResponse(
            handle, as_attachment=True, filename=attachment.name, content_type=attachment.content_type
        )
        # Internal files: no shared cache may keep them.
        response["Cache-Control"] = "private, no-store"
        return response


class NotesView(APIView):
    @extend_schema(request=h.TicketNoteInput, responses={201: TicketEventSerializer}, summary="添加内部备注（不公开）")
    def post(self, request: Request, ticket_id: int) -> Response:
        serializer = h.TicketNoteInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        event = services.ticket_note_add(
            ticket_id=ticket_id, actor=_actor(request), text=serializer.validated_data["text"]
        )
        return Response(TicketEventSerializer(event).data, status=status.HTTP_201_CREATED)


def require_workbench_user(user: User) -> None:
    if user.role not in DEPARTMENT_ROLES:
        raise NotPermitted("只有承办单位人员可以使用工作台。")


class WorkbenchInboxView(APIView):
    @extend_schema(responses=h.WorkbenchInboxSerializer, summary="承办单位工作台：待办工单与各状态件数")
    def get(self, request: Request, department_id: int) -> Response:
        user = _actor(request)
        require_workbench_user(user)
        try:
            inbox = workbench_selectors.workbench_inbox(user=user, department_id=department_id, now=clock.now())
        except Department.DoesNotExist:
            raise NotFound("单位不存在，或您无权查看其工作台。") from None
        return Response(h.workbench_inbox_data(inbox))
