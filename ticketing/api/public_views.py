"""The public site's API: no account, so every door is limited.

- `GET /api/v1/public/challenge/`: an arithmetic question in Chinese and its signed token (single use, expiring).
- `POST /api/v1/public/tickets/`: file a request (multipart with up to 3 photos, or JSON without), with consent
  and the challenge's answer; limited per client address and per phone number. Returns the ticket number and
  its query code.
- `GET /api/v1/public/tickets/{number}/?code=…`: what the status page shows. A wrong code and an unknown number
  get the same 404; limited per client address and per number, and a number is locked after repeated wrong
  codes (the right code too, until the lockout lapses).

The rating is `callback_views.PublicRatingView`. Views validate, call one service or selector, and serialize.
The page views (`ticketing.views.public`) use `submit_request` and the serializers here, so both behave alike.
"""

from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.utils import translation
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from hotline.api.serializers import StrictSerializer
from hotline.errors import ApplicationError, NotFound

from .. import public_guard, public_selectors, services
from ..files import sniffed_content_type
from ..models import AppealType, Channel, Ticket
from ..public_guard import ConfiguredRateThrottle, TooManyRequests
from ..realtime import PUBLIC_STATUS
from ..services import PUBLIC_MAX_PHOTOS, PUBLIC_PHOTO_TYPES, TicketInput, Upload
from ..workflow import Status

# What the citizen agrees to; the version is kept on the ticket's trail with the request.
CONSENT_VERSION = "2025-01"
CONSENT_TEXT = (
    "我同意 12345/8890 政务服务便民热线为办理本诉求收集、使用我填写的信息（包括联系电话和照片），"
    "并转交有关承办单位办理；联系电话只用于办理和回访，不会公开，也不会用于其他用途。"
)
NOT_FOUND_MESSAGE = "工单编号或查询码不正确。"
PUBLIC_LANGUAGE = "zh-hans"
# Ticket numbers are `{line}-{yyyymmdd}-{nnnnnn}`; anything longer is no number of ours.
NUMBER_MAX_LENGTH = 32


def size_text(size: int) -> str:
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):g} MB"
    return f"{max(1, size // 1024)} KB"


def photo_limit_text() -> str:
    size = size_text(settings.PUBLIC_PHOTO_MAX_BYTES)
    return f"最多 {PUBLIC_MAX_PHOTOS} 张，每张不超过 {size}，JPG、PNG 或 WebP 格式"


# --- serializers ------------------------------------------------------------------------------------------


class PublicSubmitInput(StrictSerializer):
    appeal_type = serializers.ChoiceField(
        label="诉求类型", choices=AppealType.choices, error_messages={"invalid_choice": "请从列表中选择诉求类型。"}
    )
    category = serializers.IntegerField(label="诉求分类", min_value=1, required=False, allow_null=True, default=None)
    region = serializers.IntegerField(label="所在区县", min_value=1, required=False, allow_null=True, default=None)
    location = serializers.CharField(label="事发地点", max_length=300)
    title = serializers.CharField(label="标题", max_length=200)
    content = serializers.CharField(label="诉求内容", max_length=5000)
    name = serializers.CharField(label="称呼", max_length=64, required=False, allow_blank=True, default="")
    phone = serializers.CharField(label="联系电话", max_length=32)
    photos = serializers.ListField(
        label="现场照片",
        child=serializers.FileField(allow_empty_file=True, use_url=False),
        required=False,
        default=list,
        help_text="最多 3 张 JPG、PNG 或 WebP 图片（按文件内容识别类型）。",
    )
    consent = serializers.BooleanField(label="同意个人信息使用说明", help_text=CONSENT_TEXT)
    challenge_token = serializers.CharField(
        label="验证题", max_length=1000, help_text="GET /public/challenge/ 返回的 token。"
    )
    challenge_answer = serializers.CharField(label="验证题答案", max_length=10)

    def validate_phone(self, value: str) -> str:
        phone = public_guard.normalize_phone(value)
        if phone is None:
            raise serializers.ValidationError("请填写正确的手机号码，或带区号的固定电话。")
        return phone

    def validate_consent(self, value: bool) -> bool:
        if not value:
            raise serializers.ValidationError("请阅读并同意个人信息使用说明后再提交。")
        return value

    def validate_photos(self, files: list[Any]) -> list[Upload]:
        if len(files) > PUBLIC_MAX_PHOTOS:
            raise serializers.ValidationError(f"最多上传 {PUBLIC_MAX_PHOTOS} 张照片。")
        max_bytes = settings.PUBLIC_PHOTO_MAX_BYTES
        photos = []
        for upload in files:
            name = upload.name or "照片"
            # One byte more than allowed is enough to refuse a large file without reading all of it.
            data = upload.read(max_bytes + 1)
            if not data:
                raise serializers.ValidationError(f"照片「{name}」是空文件。")
            if len(data) > max_bytes:
                raise serializers.ValidationError(f"照片「{name}」超过 {size_text(max_bytes)}，请换一张或压缩后再传。")
            try:
                content_type = sniffed_content_type(data, declared=upload.content_type or "", name=name)
            except ApplicationError:
                content_type = ""
            if content_type not in PUBLIC_PHOTO_TYPES:
                raise serializers.ValidationError(f"「{name}」不是 JPG、PNG 或 WebP 格式的图片。")
            photos.append(Upload(name=name, content_type=content_type, data=data))
        return photos


class PublicSubmitResult(serializers.Serializer):
    number = serializers.CharField(help_text="工单编号")
    query_code = serializers.CharField(help_text="查询码（6 位数字），与工单编号一起查询办理进度、评价答复。")
    status = serializers.CharField()
    status_display = serializers.CharField()


class ChallengeSerializer(serializers.Serializer):
    token = serializers.CharField()
    question = serializers.CharField(help_text="例如「十二加七等于多少？」，用阿拉伯数字作答。")
    expires_at = serializers.DateTimeField()
    consent_text = serializers.CharField()


class PublicLookupQuery(StrictSerializer):
    code = serializers.CharField(label="查询码", max_length=8)


class PublicTimelineEntrySerializer(serializers.Serializer):
    """One public step: the same fields as the `public.ticket` websocket message, with the step's wording."""

    event_id = serializers.IntegerField()
    step = serializers.CharField()
    step_display = serializers.SerializerMethodField()
    status = serializers.CharField()
    status_display = serializers.CharField()
    department = serializers.CharField(allow_null=True)
    reply = serializers.CharField(allow_null=True)
    occurred_at = serializers.DateTimeField()

    def get_step_display(self, update: Any) -> str:
        return public_selectors.STEP_LABELS.get(update.step, "")


class PublicReplySerializer(serializers.Serializer):
    text = serializers.CharField()
    replied_at = serializers.DateTimeField()


class PublicStatusSerializer(serializers.Serializer):
    number = serializers.CharField()
    status = serializers.CharField()
    status_display = serializers.CharField()
    appeal_type = serializers.CharField()
    appeal_type_display = serializers.CharField()
    category = serializers.CharField(allow_null=True)
    title = serializers.CharField()
    content = serializers.CharField()
    location = serializers.CharField()
    created_at = serializers.DateTimeField()
    department = serializers.CharField(allow_null=True, help_text="当前承办单位")
    reply = PublicReplySerializer(allow_null=True, help_text="审核通过的答复；重新办理期间为空")
    can_rate = serializers.BooleanField(help_text="现在可以评价答复（POST …/rating/）")
    phone_masked = serializers.CharField()
    timeline = PublicTimelineEntrySerializer(many=True)
    last_event_id = serializers.IntegerField(help_text="订阅 ws/public/tickets/{number}/ 时作为 after 参数")


# --- what the API and the pages share ---------------------------------------------------------------------


def submit_request(request: HttpRequest | Request, data: Any) -> Ticket:
    """File a citizen's request: the address's limit (every attempt counts), the fields, the challenge (used up
    by any attempt), the phone number's limit, then the service. Raises ValidationError or ApplicationError;
    nothing is stored unless everything passes."""
    public_guard.throttle([ConfiguredRateThrottle("public_submit")], message="提交过于频繁，", request=request)
    serializer = PublicSubmitInput(data=data)
    serializer.is_valid(raise_exception=True)
    values = serializer.validated_data
    public_guard.challenge_verify(token=values["challenge_token"], answer=values["challenge_answer"])
    public_guard.throttle(
        [ConfiguredRateThrottle("public_submit_phone", values["phone"])],
        message="这个联系电话提交的诉求已达今日上限，如有急事请拨打 12345 热线；",
    )
    return services.ticket_create_public(
        data=TicketInput(
            hotline_line=settings.HOTLINE_LINES[0],
            channel=Channel.WEB,
            appeal_type=values["appeal_type"],
            title=values["title"],
            content=values["content"],
            category_id=values["category"],
            region_id=values["region"],
            location_text=values["location"],
            caller_name=values["name"],
            caller_phone=values["phone"],
            extra={"consent": CONSENT_VERSION},
        ),
        photos=values["photos"],
    )


def lookup(request: HttpRequest | Request, *, number: str, query_code: str) -> Ticket:
    """The ticket a citizen asks for (limits and lockout in `public_ticket_lookup`); NotFound, one message for a
    wrong code and an unknown number, otherwise."""
    if len(number) > NUMBER_MAX_LENGTH:
        raise NotFound(NOT_FOUND_MESSAGE, code="ticket_not_found")
    address = public_guard.client_address(request)
    ticket = public_selectors.public_ticket_lookup(number=number, query_code=query_code, address=address)
    if ticket is None:
        raise NotFound(NOT_FOUND_MESSAGE, code="ticket_not_found")
    return ticket


# --- views ------------------------------------------------------------------------------------------------


class _PublicView(APIView):
    # Anyone may call; no session is looked at, so there is nothing for CSRF to protect.
    authentication_classes: list[type] = []
    permission_classes = [AllowAny]

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        # The public site is Chinese whatever the client's Accept-Language: DRF's own messages too.
        with translation.override(PUBLIC_LANGUAGE):
            response = super().dispatch(request, *args, **kwargs)
        response["Content-Language"] = PUBLIC_LANGUAGE
        return response

    def handle_exception(self, exc: Exception) -> Response:
        response = super().handle_exception(exc)
        if isinstance(exc, TooManyRequests):
            response["Retry-After"] = str(exc.retry_after)
        return response

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        response = super().finalize_response(request, response, *args, **kwargs)
        # Query codes and the citizen's own request: no shared cache may keep them.
        response["Cache-Control"] = "no-store"
        return response


class PublicChallengeView(_PublicView):
    """群众提交诉求前的验证题（算术题，一次有效，10 分钟内作答）。"""

    @extend_schema(responses=ChallengeSerializer, summary="获取提交诉求的验证题", auth=[])
    def get(self, request: Request) -> Response:
        public_guard.throttle([ConfiguredRateThrottle("public_challenge")], message="请求过于频繁，", request=request)
        challenge = public_guard.challenge_issue()
        body = {
            "token": challenge.token,
            "question": challenge.question,
            "expires_at": challenge.expires_at,
            "consent_text": CONSENT_TEXT,
        }
        return Response(ChallengeSerializer(body).data)


class PublicTicketCreateView(_PublicView):
    """群众网上提交诉求：返回工单编号与查询码。"""

    parser_classes = [MultiPartParser, FormParser, JSONParser]

    @extend_schema(
        request={"multipart/form-data": PublicSubmitInput, "application/json": PublicSubmitInput},
        responses={201: PublicSubmitResult},
        summary="提交诉求（无需登录；须同意个人信息使用说明并回答验证题）",
        auth=[],
    )
    def post(self, request: Request) -> Response:
        ticket = submit_request(request, request.data)
        body = {
            "number": ticket.number,
            "query_code": ticket.query_code,
            "status": ticket.status,
            "status_display": PUBLIC_STATUS[Status(ticket.status)],
        }
        return Response(PublicSubmitResult(body).data, status=status.HTTP_201_CREATED)


class PublicTicketStatusView(_PublicView):
    """凭工单编号与查询码查询办理进度：状态、公开的办理过程、承办单位、答复；不含任何内部信息。"""

    @extend_schema(
        parameters=[OpenApiParameter("code", str, required=True, description="查询码")],
        responses=PublicStatusSerializer,
        summary="查询办理进度",
        auth=[],
    )
    def get(self, request: Request, number: str) -> Response:
        query = PublicLookupQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        ticket = lookup(request, number=number, query_code=query.validated_data["code"])
        return Response(PublicStatusSerializer(public_selectors.ticket_public_status(ticket=ticket)).data)
