"""The measures API: counts and rates by group, the department ranking, hot topics, the Excel export.

Views validate the query, call one function of `ticketing.measures`, and serialize; who may see what is
decided there (supervisors and administrators: everything; department leads: their subtree).
"""

from typing import Any

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from hotline.api.serializers import StrictSerializer

from .. import measures
from ..calendar import TZ
from ..measures import GROUPING_LABELS, Counts, Period, Topic
from ..measures_export import measures_workbook
from ..models import User

DEFAULT_DAYS = 30
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class PeriodQuery(StrictSerializer):
    start = serializers.DateField(required=False, help_text="开始日期（含），YYYY-MM-DD，北京时间。")
    end = serializers.DateField(required=False, help_text="结束日期（不含），YYYY-MM-DD。两者都不填：最近 30 天。")
    # DRF's renderer switch; accepted so that ?format=json is not an unknown field.
    format = serializers.CharField(max_length=10, required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if ("start" in attrs) != ("end" in attrs):
            missing = "end" if "start" in attrs else "start"
            raise serializers.ValidationError({missing: ["请同时填写开始日期和结束日期。"]})
        return attrs

    def period(self) -> Period:
        data = self.validated_data
        if "start" in data:
            return Period.from_dates(data["start"], data["end"])
        return Period.days_ending_today(DEFAULT_DAYS)


class MeasuresQuery(PeriodQuery):
    group_by = serializers.ChoiceField(
        choices=list(GROUPING_LABELS.items()), required=False, help_text="分组：单位、区县、诉求大类、日、周、月。"
    )


class HotTopicsQuery(PeriodQuery):
    limit = serializers.IntegerField(min_value=1, max_value=50, default=10)


def _actor(request: Request) -> User:
    assert isinstance(request.user, User)
    return request.user


def _query(serializer_class: type[PeriodQuery], request: Request) -> PeriodQuery:
    query = serializer_class(data=request.query_params.dict())
    query.is_valid(raise_exception=True)
    return query


def _period(period: Period) -> dict[str, str]:
    return {
        "start": period.first_day.isoformat(),
        "end": period.end.astimezone(TZ).date().isoformat(),
        "label": period.label(),
    }


def _figures(counts: Counts) -> dict[str, Any]:
    return {"counts": counts.as_dict(), "rates": counts.rates()}


def _topic(topic: Topic) -> dict[str, Any]:
    return {
        "key": topic.key,
        "label": topic.label,
        "count": topic.count,
        "previous": topic.previous,
        "change": topic.change,
        "change_rate": topic.change_rate,
        "estimated": topic.estimated,
    }


class MeasuresView(APIView):
    """统计指标：受理量、即时答复率、派单量、按时签收、按时答复、三率、退单率、重办率；可按单位、区县、诉求大类、日、周、月分组。"""

    @extend_schema(parameters=[MeasuresQuery], responses=OpenApiTypes.OBJECT, summary="统计指标")
    def get(self, request: Request) -> Response:
        query = _query(MeasuresQuery, request)
        group_by = query.validated_data.get("group_by")
        report = measures.measures(user=_actor(request), period=query.period(), group_by=group_by)
        return Response(
            {
                "period": _period(report.period),
                "group_by": group_by,
                "total": _figures(report.total),
                "rows": [{"key": row.key, "label": row.label, **_figures(row.counts)} for row in report.rows],
            }
        )


class RankingView(APIView):
    """承办单位排名：三率按配置的权重（HOTLINE_RANKING_WEIGHTS）加权，满分 100。"""

    @extend_schema(parameters=[PeriodQuery], responses=OpenApiTypes.OBJECT, summary="承办单位排名")
    def get(self, request: Request) -> Response:
        query = _query(PeriodQuery, request)
        period = query.period()
        rows = measures.department_ranking(user=_actor(request), period=period)
        return Response(
            {
                "period": _period(period),
                "weights": measures.ranking_weights(),
                "rows": [
                    {
                        "rank": row.rank,
                        "department_id": row.department_id,
                        "code": row.code,
                        "name": row.name,
                        "score": round(row.score, 2) if row.score is not None else None,
                        **_figures(row.counts),
                    }
                    for row in rows
                ],
            }
        )


class HotTopicsView(APIView):
    """热点：诉求分类、地点、标题关键词，与上一个等长区间比较。"""

    @extend_schema(parameters=[HotTopicsQuery], responses=OpenApiTypes.OBJECT, summary="热点诉求")
    def get(self, request: Request) -> Response:
        query = _query(HotTopicsQuery, request)
        hot = measures.hot_topics(user=_actor(request), period=query.period(), limit=query.validated_data["limit"])
        return Response(
            {
                "period": _period(hot.period),
                "previous_period": _period(hot.previous_period),
                "intake": hot.intake,
                "previous_intake": hot.previous_intake,
                "categories": [_topic(t) for t in hot.categories],
                "places": [_topic(t) for t in hot.places],
                "words": [_topic(t) for t in hot.words],
            }
        )


class ExportView(APIView):
    """导出 Excel：汇总、按单位、排名、热点四个工作表（不含个人信息）。"""

    @extend_schema(
        parameters=[PeriodQuery],
        responses={(200, XLSX): OpenApiResponse(OpenApiTypes.BINARY, description="Excel 工作簿")},
        summary="导出统计 Excel",
    )
    def get(self, request: Request) -> HttpResponse:
        query = _query(PeriodQuery, request)
        period = query.period()
        content = measures_workbook(user=_actor(request), period=period)
        last_day = period.last_day
        name = f"hotline-measures_{period.first_day:%Y-%m-%d}_{last_day:%Y-%m-%d}.xlsx"
        response = HttpResponse(content, content_type=XLSX)
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        response["Cache-Control"] = "no-store"
        return response
