"""Forms of the admin: the rule form (list conditions as checkboxes, patterns checked by the model's clean)
and the dry-run form."""

from typing import Any

from django import forms

from ticketing.models import AppealType, Category, Channel, Region

from .models import WEEKDAY_CHOICES, Rule


def _lines() -> list[tuple[str, str]]:
    from django.conf import settings

    return [(line, line) for line in settings.HOTLINE_LINES]


class RuleForm(forms.ModelForm):
    appeal_types = forms.MultipleChoiceField(
        label="诉求类型", choices=AppealType.choices, required=False, widget=forms.CheckboxSelectMultiple
    )
    channels = forms.MultipleChoiceField(
        label="来源渠道", choices=Channel.choices, required=False, widget=forms.CheckboxSelectMultiple
    )
    hotline_lines = forms.MultipleChoiceField(
        label="热线号码", choices=[], required=False, widget=forms.CheckboxSelectMultiple
    )
    weekdays = forms.TypedMultipleChoiceField(
        label="星期", choices=WEEKDAY_CHOICES, coerce=int, required=False, widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = Rule
        fields = [
            "name",
            "description",
            "order",
            "enabled",
            "appeal_types",
            "categories",
            "keywords",
            "keyword_mode",
            "patterns",
            "regions",
            "channels",
            "hotline_lines",
            "time_from",
            "time_to",
            "weekdays",
            "lead_department",
            "assisting_departments",
            "urgency",
            "emergency_target",
            "legal_route",
            "script",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["hotline_lines"].choices = _lines()  # type: ignore[attr-defined]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        conditions = (
            "appeal_types",
            "categories",
            "keywords",
            "patterns",
            "regions",
            "channels",
            "hotline_lines",
            "time_from",
            "weekdays",
        )
        if not any(data.get(name) for name in conditions):
            raise forms.ValidationError("至少设置一个条件：没有条件的规则不会命中任何诉求。")
        actions = ("lead_department", "urgency", "emergency_target", "legal_route")
        if not any(data.get(name) for name in actions):
            raise forms.ValidationError("至少设置一个动作：主办单位、紧急程度、紧急转接或依法分流。")
        if data.get("assisting_departments") and not data.get("lead_department"):
            self.add_error("assisting_departments", "设置协办单位须同时设置主办单位。")
        return data


class DryRunForm(forms.Form):
    title = forms.CharField(label="标题", max_length=200, required=False)
    content = forms.CharField(label="诉求内容", widget=forms.Textarea(attrs={"rows": 6, "cols": 80}))
    appeal_type = forms.ChoiceField(label="诉求类型", choices=[("", "—"), *AppealType.choices], required=False)
    category = forms.ModelChoiceField(label="诉求分类", queryset=Category.objects.all(), required=False)
    region = forms.ModelChoiceField(label="区域", queryset=Region.objects.order_by("code"), required=False)
    channel = forms.ChoiceField(label="来源渠道", choices=[("", "—"), *Channel.choices], required=False)
    hotline_line = forms.ChoiceField(label="热线号码", choices=[], required=False)
    received_at = forms.DateTimeField(label="受理时间（空为现在）", required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["hotline_line"].choices = [("", "—"), *_lines()]  # type: ignore[attr-defined]
