"""Admin: routing rules (ordered, enabled or not, hit counts read-only, patterns validated), the dry-run page
(`admin/routing/rule/dry-run/`), and decisions and alerts read-only (they are written by the services)."""

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path

from ticketing.models import Department, User

from . import selectors, services
from .forms import DryRunForm, RuleForm
from .models import ProactiveAlert, RoutingDecision, Rule
from .types import RoutingInput


@admin.register(Rule)
class RuleAdmin(admin.ModelAdmin):
    form = RuleForm
    list_display = [
        "order",
        "name",
        "enabled",
        "lead_department",
        "emergency_target",
        "legal_route",
        "hit_count",
        "last_hit_at",
    ]
    list_display_links = ["name"]
    list_editable = ["order", "enabled"]
    list_filter = ["enabled", "emergency_target", "legal_route"]
    search_fields = ["name", "keywords", "patterns"]
    ordering = ["order", "id"]
    autocomplete_fields = ["lead_department", "assisting_departments", "regions"]
    filter_horizontal = ["categories"]
    readonly_fields = ["hit_count", "last_hit_at", "created_at", "updated_at"]
    actions = ["enable", "disable"]
    change_list_template = "routing/rule_change_list.html"
    fieldsets = [
        (None, {"fields": ["name", "description", "order", "enabled"]}),
        (
            "条件（设置的条件须全部满足）",
            {
                "fields": [
                    "appeal_types",
                    "categories",
                    "keywords",
                    "keyword_mode",
                    "patterns",
                    "regions",
                    "channels",
                    "hotline_lines",
                    ("time_from", "time_to"),
                    "weekdays",
                ]
            },
        ),
        (
            "动作",
            {
                "fields": [
                    "lead_department",
                    "assisting_departments",
                    "urgency",
                    "emergency_target",
                    "legal_route",
                    "script",
                ]
            },
        ),
        ("统计", {"fields": ["hit_count", "last_hit_at", "created_at", "updated_at"]}),
    ]

    def _toggle(self, request: HttpRequest, queryset: QuerySet[Rule], *, enabled: bool) -> None:
        assert isinstance(request.user, User)
        changed = services.rule_set_enabled(
            rule_ids=queryset.values_list("id", flat=True), enabled=enabled, actor=request.user
        )
        self.message_user(request, f"已{'启用' if enabled else '停用'} {changed} 条规则。", messages.SUCCESS)

    @admin.action(description="启用所选规则")
    def enable(self, request: HttpRequest, queryset: QuerySet[Rule]) -> None:
        self._toggle(request, queryset, enabled=True)

    @admin.action(description="停用所选规则")
    def disable(self, request: HttpRequest, queryset: QuerySet[Rule]) -> None:
        self._toggle(request, queryset, enabled=False)

    def get_urls(self) -> list[URLPattern]:
        own = [path("dry-run/", self.admin_site.admin_view(self.dry_run), name="routing_rule_dry_run")]
        return own + super().get_urls()

    def dry_run(self, request: HttpRequest) -> HttpResponse:
        """Paste a text, see which rules fire and why, and the recommendations. Writes nothing."""
        user = request.user
        allowed = isinstance(user, User) and selectors.has_role(user, selectors.DISPATCH_ROLES)
        form = DryRunForm(request.POST or None)
        result = None
        names: dict[int, str] = {}
        if allowed and request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            inp = RoutingInput(
                title=data["title"],
                content=data["content"],
                appeal_type=data["appeal_type"],
                category_id=data["category"].id if data["category"] else None,
                region_id=data["region"].id if data["region"] else None,
                channel=data["channel"],
                hotline_line=data["hotline_line"],
                received_at=data["received_at"],
            )
            result = selectors.route(inp)
            ids = [result.lead_department_id, *(r.department_id for r in result.recommendations)]
            names = dict(Department.objects.filter(id__in=[i for i in ids if i]).values_list("id", "name"))
        context: dict[str, Any] = {
            **self.admin_site.each_context(request),
            "title": "派单规则试运行",
            "opts": self.model._meta,
            "form": form,
            "allowed": allowed,
            "result": result,
            "lead_name": names.get(result.lead_department_id or 0, "") if result else "",
            "recommendations": [(names.get(r.department_id, str(r.department_id)), r) for r in result.recommendations]
            if result
            else [],
        }
        return TemplateResponse(request, "routing/dry_run.html", context, status=200 if allowed else 403)


@admin.register(RoutingDecision)
class RoutingDecisionAdmin(admin.ModelAdmin):
    list_display = ["decided_at", "ticket", "outcome", "lead_department", "rule_name", "confidence", "latency_ms"]
    list_filter = ["outcome", "mode"]
    search_fields = ["ticket__number", "rule_name"]
    list_select_related = ["ticket", "lead_department"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(ProactiveAlert)
class ProactiveAlertAdmin(admin.ModelAdmin):
    list_display = ["raised_at", "region", "category", "window_days", "acknowledged_by", "acknowledged_at"]
    list_filter = ["acknowledged_at"]
    list_select_related = ["region", "category", "acknowledged_by"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
