from django.contrib import admin
from django.http import HttpRequest

from .models import Call, CallEvent, TranscriptSegment


class SegmentInline(admin.TabularInline):
    model = TranscriptSegment
    extra = 0
    can_delete = False
    fields = readonly_fields = ("index", "start_ms", "end_ms", "text")

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class EventInline(admin.TabularInline):
    model = CallEvent
    extra = 0
    can_delete = False
    fields = readonly_fields = ("occurred_at", "kind", "agent", "agent_extension", "data")

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Call)
class CallAdmin(admin.ModelAdmin):
    list_display = ["call_uuid", "hotline_line", "door", "status", "transcript_status", "started_at", "agent"]
    list_filter = ["hotline_line", "door", "status", "transcript_status"]
    # The caller's number is personal data: not listed, not searchable here.
    exclude = ["caller_number"]
    readonly_fields = [f.name for f in Call._meta.fields if f.name != "caller_number"]
    inlines = [EventInline, SegmentInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
