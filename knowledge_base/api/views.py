"""The knowledge-base API. Views validate input, call one service or selector, and serialize; nothing more.

`/api/v1/knowledge/` is for staff (what each may see is `selectors.articles_visible_to`); writes go through
`services`. `/api/v1/public/knowledge/` answers anyone, reads only, and shows published, public articles
within their validity (`selectors.articles_public`).
"""

from itertools import pairwise
from typing import Any, cast

from django.db.models import QuerySet
from django.http import Http404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ticketing.models import User

from .. import selectors, services
from ..models import Article, ArticleVersion
from ..services import ArticleContent
from . import serializers as s


def _actor(request: Request) -> User:
    """The signed-in user; every staff view requires authentication (IsAuthenticated by default)."""
    assert isinstance(request.user, User)
    return request.user


def _article_id(pk: str | None) -> int:
    try:
        return int(pk or "")
    except ValueError:
        raise Http404 from None


def _filters(query: dict[str, Any]) -> selectors.ArticleFilters:
    return selectors.ArticleFilters(
        kind=query.get("kind"),
        status=query.get("status"),
        audience=query.get("audience"),
        category_id=query.get("category"),
        department_id=query.get("department"),
        tag=query.get("tag"),
    )


class _Listing(viewsets.GenericViewSet):
    """A list that is either a filtered list (newest first) or, with `?q=`, ranked search hits."""

    def _list(self, request: Request, *, user: User | None, query: dict[str, Any]) -> Response:
        filters = _filters(query)
        context = self.get_serializer_context()
        if query.get("q"):
            found = selectors.article_search(text=query["q"], user=user, filters=filters)
            context["hits"] = {item.article.id: item.hit for item in found}
            rows: list[Article] | QuerySet[Article] = [item.article for item in found]
        else:
            visible = (
                selectors.articles_public_listed() if user is None else selectors.articles_visible_listed(user=user)
            )
            rows = selectors.articles_filtered(visible, filters)
        # Search hits are a list in rank order; the paginator pages lists as well as querysets.
        page = self.paginate_queryset(cast(Any, rows))
        serializer_class = self.get_serializer_class()
        return self.get_paginated_response(serializer_class(page, many=True, context=context).data)


class ArticleViewSet(_Listing):
    """知识库文章（工作人员）：编写、修订、提交审核、审核、撤回、版本历史、采用记录。"""

    lookup_value_regex = r"[0-9]+"
    serializer_class = s.ArticleListSerializer

    def get_queryset(self) -> QuerySet[Article]:
        return selectors.articles_visible_listed(user=_actor(self.request))

    def _visible(self, request: Request, pk: str | None) -> Article:
        article = selectors.article_get(article_id=_article_id(pk), user=_actor(request))
        if article is None:
            raise Http404
        return article

    def _detail(self, request: Request, article_id: int, *, status_code: int = status.HTTP_200_OK) -> Response:
        user = _actor(request)
        article = selectors.article_get(article_id=article_id, user=user)
        if article is None:
            raise Http404
        context = self.get_serializer_context()
        if services.may_write(user, article.owner_department_id):
            context["open_version"] = selectors.article_open_version(article=article)
        return Response(s.ArticleDetailSerializer(article, context=context).data, status=status_code)

    def _version(self, version: ArticleVersion, *, status_code: int = status.HTTP_200_OK) -> Response:
        return Response(s.VersionSerializer(version).data, status=status_code)

    @extend_schema(
        parameters=[s.ArticleListQuery],
        responses=s.ArticleListSerializer(many=True),
        summary="文章列表；带 q 时为检索结果（按相关度，附高亮摘要）",
    )
    def list(self, request: Request) -> Response:
        query = s.ArticleListQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        return self._list(request, user=_actor(request), query=query.validated_data)

    @extend_schema(responses=s.ArticleDetailSerializer, summary="文章详情")
    def retrieve(self, request: Request, pk: str | None = None) -> Response:
        return self._detail(request, _article_id(pk))

    @extend_schema(
        request=s.ArticleCreateInput,
        responses={201: s.ArticleDetailSerializer},
        summary="新建文章（第 1 版草稿）",
    )
    def create(self, request: Request) -> Response:
        serializer = s.ArticleCreateInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        article = services.article_create(
            actor=_actor(request),
            kind=serializer.validated_data["kind"],
            owner_department_id=serializer.validated_data["owner_department"],
            content=serializer.content(),
            change_note=serializer.validated_data["change_note"],
        )
        return self._detail(request, article.id, status_code=status.HTTP_201_CREATED)

    @extend_schema(
        request=s.ArticleReviseInput,
        responses={
            201: OpenApiResponse(s.VersionSerializer, description="新版本（草稿）"),
            200: OpenApiResponse(s.VersionSerializer, description="已修改尚未提交的草稿"),
        },
        summary="修订：写下一版（只传要改的字段，其余沿用最新版本）",
    )
    @action(detail=True, methods=["post"])
    def revise(self, request: Request, pk: str | None = None) -> Response:
        article = self._visible(request, pk)
        serializer = s.ArticleReviseInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        latest = selectors.article_latest_version(article=article)
        base = ArticleContent.from_json(latest.content) if latest is not None else None
        version = services.article_revise(
            article_id=article.id,
            actor=_actor(request),
            content=serializer.content(base),
            change_note=serializer.validated_data["change_note"],
        )
        is_new = latest is None or latest.number != version.number
        return self._version(version, status_code=status.HTTP_201_CREATED if is_new else status.HTTP_200_OK)

    @extend_schema(request=s.EmptyInput, responses=s.VersionSerializer, summary="提交审核")
    @action(detail=True, methods=["post"])
    def submit(self, request: Request, pk: str | None = None) -> Response:
        article = self._visible(request, pk)
        s.EmptyInput(data=request.data).is_valid(raise_exception=True)
        return self._version(services.article_submit(article_id=article.id, actor=_actor(request)))

    @extend_schema(request=s.ApproveInput, responses=s.ArticleDetailSerializer, summary="审核通过并发布")
    @action(detail=True, methods=["post"])
    def approve(self, request: Request, pk: str | None = None) -> Response:
        article = self._visible(request, pk)
        serializer = s.ApproveInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.article_approve(article_id=article.id, actor=_actor(request), note=serializer.validated_data["note"])
        return self._detail(request, article.id)

    @extend_schema(request=s.RejectInput, responses=s.VersionSerializer, summary="审核退回（须填写意见）")
    @action(detail=True, methods=["post"])
    def reject(self, request: Request, pk: str | None = None) -> Response:
        article = self._visible(request, pk)
        serializer = s.RejectInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        version = services.article_reject(
            article_id=article.id, actor=_actor(request), note=serializer.validated_data["note"]
        )
        return self._version(version)

    @extend_schema(request=s.WithdrawInput, responses=s.ArticleDetailSerializer, summary="撤回已发布的文章")
    @action(detail=True, methods=["post"])
    def withdraw(self, request: Request, pk: str | None = None) -> Response:
        article = self._visible(request, pk)
        serializer = s.WithdrawInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.article_withdraw(
            article_id=article.id, actor=_actor(request), reason=serializer.validated_data["reason"]
        )
        return self._detail(request, article.id)

    @extend_schema(responses=s.VersionHistorySerializer(many=True), summary="版本历史（新版本在前）")
    # Not paginated: the whole history is returned, so the schema must not promise a page.
    @action(detail=True, methods=["get"], pagination_class=None)
    def versions(self, request: Request, pk: str | None = None) -> Response:
        article = self._visible(request, pk)
        history = list(selectors.article_versions_visible_to(article=article, user=_actor(request)))
        # Each version is compared with the one shown before it (older), so the changes read as a sequence.
        previous = {newer.number: older for newer, older in pairwise(history)}
        return Response(s.VersionHistorySerializer(history, many=True, context={"previous": previous}).data)

    @extend_schema(
        request=s.UseInput,
        responses={200: s.UseSerializer},
        summary="记录采用：坐席用这篇文章答复了工单或来电（同一工单只计一次）",
    )
    @action(detail=True, methods=["post"])
    def uses(self, request: Request, pk: str | None = None) -> Response:
        article = self._visible(request, pk)
        serializer = s.UseInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        use = services.article_use_record(
            article_id=article.id, ticket_id=serializer.validated_data["ticket"], actor=_actor(request)
        )
        counted = selectors.article_get(article_id=article.id, user=_actor(request))
        use_count = counted.use_count if counted is not None else article.use_count
        return Response(s.UseSerializer(use, context={"use_count": use_count}).data)

    @extend_schema(responses=s.ArticleListSerializer(many=True), summary="待我审核的文章")
    @action(detail=False, methods=["get"], url_path="review-queue")
    def review_queue(self, request: Request) -> Response:
        queryset = selectors.articles_awaiting_review_listed(user=_actor(request))
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(s.ArticleListSerializer(page, many=True).data)


class PublicArticleViewSet(_Listing):
    """公开的办事指南与常见问题（无需登录，只读）。"""

    lookup_value_regex = r"[0-9]+"
    serializer_class = s.PublicArticleListSerializer
    # Anyone may read; no session is looked at, so there is nothing for CSRF to protect here.
    authentication_classes: list[type] = []
    permission_classes = [AllowAny]

    def get_queryset(self) -> QuerySet[Article]:
        return selectors.articles_public_listed()

    @extend_schema(
        parameters=[s.PublicArticleListQuery],
        responses=s.PublicArticleListSerializer(many=True),
        summary="公开文章列表；带 q 时为检索结果（按相关度，附高亮摘要）",
        auth=[],
    )
    def list(self, request: Request) -> Response:
        query = s.PublicArticleListQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        return self._list(request, user=None, query=query.validated_data)

    @extend_schema(responses=s.PublicArticleDetailSerializer, summary="公开文章详情", auth=[])
    def retrieve(self, request: Request, pk: str | None = None) -> Response:
        article = selectors.article_get(article_id=_article_id(pk), user=None)
        if article is None:
            raise Http404
        return Response(s.PublicArticleDetailSerializer(article).data)


class SuggestionView(APIView):
    """为工单或一段文字推荐知识库答案（带高亮摘要）；给出工单时同时推送到本人的坐席屏幕。"""

    @extend_schema(request=s.SuggestionInput, responses={200: s.SuggestionSerializer(many=True)}, summary="推荐答案")
    def post(self, request: Request) -> Response:
        actor = _actor(request)
        serializer = s.SuggestionInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        ticket_id = serializer.validated_data.get("ticket")
        if ticket_id is not None:
            found = selectors.article_suggestions_for_ticket(ticket_id=ticket_id, user=actor)
            if found is None:
                raise Http404
        else:
            found = selectors.article_suggestions(text=serializer.validated_data["text"], user=actor)
        if ticket_id is not None and found:
            services.suggestions_push(user=actor, suggestions=found, ticket_id=ticket_id)
        rows = [
            {"article_id": f.article_id, "title": f.title, "kind": f.kind, "score": f.score, "snippet": f.snippet}
            for f in found
        ]
        return Response(s.SuggestionSerializer(rows, many=True).data)
