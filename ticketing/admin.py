"""Admin for the organisation and configuration. Tickets and their trail are read-only here: every change
to a ticket goes through the services (the API), so the trail stays complete."""

from typing import Any

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest

from .models import (
    CalendarDay,
    Category,
    DeadlinePolicy,
    Department,
    EscalationStep,
    ExtensionRequest,
    Open311Client,
    Region,
    ResponsibilityItem,
    SupervisionOrder,
    Ticket,
    TicketEvent,
    User,
)
from .open311_services import open311_client_issue_key


@admin.register(Region)
class RegionAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "level", "parent"]
    list_filter = ["level"]
    search_fields = ["code", "name"]
    autocomplete_fields = ["parent"]


class ResponsibilityInline(admin.TabularInline):
    model = ResponsibilityItem
    extra = 1


@admin.register(Department)
class DepartmentAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "kind", "parent", "accepts_dispatch", "is_active"]
    list_filter = ["kind", "accepts_dispatch", "is_active"]
    search_fields = ["code", "name"]
    autocomplete_fields = ["parent", "jurisdiction"]
    inlines = [ResponsibilityInline]


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    list_display = ["username", "full_name", "role", "is_active"]
    list_filter = ["role", "is_active"]
    search_fields = ["username", "full_name"]
    filter_horizontal = ["departments", "groups", "user_permissions"]
    fieldsets = (
        *(BaseUserAdmin.fieldsets or ()),
        ("热线角色", {"fields": ("full_name", "role", "departments")}),
    )
    add_fieldsets = (
        *BaseUserAdmin.add_fieldsets,
        ("热线角色", {"fields": ("full_name", "role", "departments")}),
    )


class SubcategoryInline(admin.TabularInline):
    model = Category
    fk_name = "parent"
    extra = 1
    fields = ["name", "sort_order", "is_active"]


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ["name", "parent", "sort_order", "is_active"]
    list_filter = ["is_active", "parent"]
    search_fields = ["name"]
    inlines = [SubcategoryInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Category]:
        return super().get_queryset(request).select_related("parent")


@admin.register(DeadlinePolicy)
class DeadlinePolicyAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "appeal_type",
        "urgency",
        "category",
        "accept_within",
        "accept_unit",
        "reply_within",
        "reply_unit",
        "is_active",
    ]
    list_filter = ["is_active", "appeal_type", "urgency"]
    autocomplete_fields = ["category"]


@admin.register(CalendarDay)
class CalendarDayAdmin(admin.ModelAdmin):
    list_display = ["date", "is_working_day", "note"]
    list_filter = ["is_working_day"]
    date_hierarchy = "date"


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class TicketEventInline(admin.TabularInline):
    model = TicketEvent
    extra = 0
    can_delete = False
    fields = readonly_fields = ("id", "created_at", "kind", "actor", "from_status", "to_status", "data")

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Ticket)
class TicketAdmin(ReadOnlyAdmin):
    list_display = ["number", "status", "appeal_type", "category", "lead_department", "created_at", "reply_due_at"]
    list_filter = ["status", "hotline_line", "channel", "appeal_type", "urgency"]
    search_fields = ["number", "title"]
    date_hierarchy = "created_at"
    list_select_related = ["category", "category__parent", "lead_department"]
    # Contact data is not shown here; it is revealed, with a trail entry, through the API.
    exclude = ["caller_name", "caller_phone", "caller_id_number"]
    inlines = [TicketEventInline]


@admin.register(ExtensionRequest)
class ExtensionRequestAdmin(ReadOnlyAdmin):
    list_display = ["ticket", "department", "working_days", "status", "created_at"]
    list_filter = ["status"]


@admin.register(EscalationStep)
class EscalationStepAdmin(admin.ModelAdmin):
    """The escalation ladder. A step already taken for a ticket is not taken again for the same deadline,
    even if its offset changes; switch a step off rather than delete it (its escalations refer to it)."""

    list_display = ["name", "deadline", "after_working_days", "action", "is_active"]
    list_editable = ["is_active"]
    list_filter = ["deadline", "action", "is_active"]
    ordering = ["deadline", "after_working_days", "id"]


@admin.register(SupervisionOrder)
class SupervisionOrderAdmin(ReadOnlyAdmin):
    """Supervision orders are issued, answered, closed and escalated through the API, so the trail stays
    complete; here they are only looked at."""

    list_display = ["id", "ticket", "department", "level", "formal_notice", "status", "issued_at", "due_at"]
    list_filter = ["status", "level", "formal_notice"]
    search_fields = ["ticket__number"]
    date_hierarchy = "issued_at"
    list_select_related = ["ticket", "department"]


@admin.register(Open311Client)
class Open311ClientAdmin(admin.ModelAdmin):
    """Applications that file requests through Open311 (docs/open311.md). Adding one issues its api_key, shown
    once; unticking 启用 stops the key at once. Clients are never deleted: their requests keep the link."""

    list_display = ["name", "is_active", "created_at", "last_used_at"]
    list_filter = ["is_active"]
    search_fields = ["name"]
    fields = ["name", "is_active", "created_at", "last_used_at"]
    readonly_fields = ["created_at", "last_used_at"]

    def save_model(self, request: HttpRequest, obj: Open311Client, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        key = open311_client_issue_key(client=obj)
        messages.warning(request, f"「{obj.name}」的 api_key（只显示这一次，请立即复制并安全地交给对方）：{key}")

    def has_delete_permission(self, request: HttpRequest, obj: Open311Client | None = None) -> bool:
        return False
