"""Forms for the department pages. They check shape only and build an `ArticleContent`; the services decide
(required fields per kind, lengths, who may do what) and their field errors are shown on the form."""

from __future__ import annotations

from typing import Any

from django import forms

from ticketing import selectors as ticket_selectors
from ticketing.models import Department

from .importers import TAG_SPLIT
from .models import Article, ArticleKind, ArticleStatus, Audience
from .services import ArticleContent

# What each kind's form shows, in order; fields a kind does not show keep the value they have.
FIELDS_BY_KIND: dict[str, tuple[str, ...]] = {
    ArticleKind.GUIDE: (
        "title",
        "conditions",
        "materials",
        "steps",
        "fees",
        "time_limit",
        "legal_basis",
        "service_location",
    ),
    ArticleKind.FAQ: ("title", "question", "answer"),
    ArticleKind.POLICY: ("title", "document_number", "answer", "legal_basis"),
    ArticleKind.NOTICE: ("title", "document_number", "answer"),
}
SHORT_FIELDS = frozenset({"title", "fees", "time_limit", "document_number"})
ANSWER_LABELS: dict[str, str] = {ArticleKind.FAQ: "答复", ArticleKind.POLICY: "正文", ArticleKind.NOTICE: "正文"}


def field_label(name: str) -> str:
    return str(getattr(Article._meta.get_field(name), "verbose_name", name))


def category_choices() -> list[tuple[str, Any]]:
    choices: list[tuple[str, Any]] = [("", "（不选）")]
    for top in ticket_selectors.category_tree():
        choices.append((str(top.id), top.name))
        choices.extend((str(child.id), f"{top.name} / {child.name}") for child in top.children.all())
    return choices


class ArticleForm(forms.Form):
    """One kind's content fields, plus the settings review also guards and the change note."""

    audience = forms.ChoiceField(label="公开范围", choices=Audience.choices, initial=Audience.INTERNAL)
    category = forms.TypedChoiceField(label="诉求分类", required=False, coerce=int, empty_value=None)
    tags = forms.CharField(label="标签", required=False, help_text="多个标签用逗号或顿号分开")
    valid_from = forms.DateField(label="生效日期", required=False, widget=forms.DateInput(attrs={"type": "date"}))
    valid_until = forms.DateField(label="有效期至", required=False, widget=forms.DateInput(attrs={"type": "date"}))
    change_note = forms.CharField(label="修改说明", required=False, max_length=300)

    def __init__(self, *args: Any, kind: str, departments: list[Department] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.kind = kind
        self.content_fields = FIELDS_BY_KIND[kind]
        fields: dict[str, forms.Field] = {}
        if departments is not None:
            fields["owner_department"] = forms.TypedChoiceField(
                label="维护单位",
                coerce=int,
                choices=[(str(d.id), d.name) for d in departments],
                initial=str(departments[0].id) if len(departments) == 1 else None,
            )
        for name in self.content_fields:
            label = ANSWER_LABELS.get(kind, field_label(name)) if name == "answer" else field_label(name)
            widget = forms.TextInput() if name in SHORT_FIELDS else forms.Textarea(attrs={"rows": 5})
            # Required fields per kind are the service's rule; it reports them on the form.
            fields[name] = forms.CharField(label=label, required=False, widget=widget, strip=True)
        self.fields = {**fields, **self.fields}
        category = self.fields["category"]
        assert isinstance(category, forms.TypedChoiceField)
        category.choices = category_choices()

    @classmethod
    def initial_from(cls, content: ArticleContent) -> dict[str, Any]:
        initial: dict[str, Any] = {name: getattr(content, name) for name in ArticleContent.__dataclass_fields__}
        initial["category"] = str(content.category_id) if content.category_id else ""
        initial["tags"] = "、".join(content.tags)
        return initial

    def content(self, base: ArticleContent | None = None) -> ArticleContent:
        data = self.cleaned_data
        values: dict[str, Any] = dict(base.__dict__) if base is not None else {}
        values.update({name: data[name] for name in self.content_fields})
        values.update(
            audience=data["audience"],
            category_id=data["category"],
            tags=tuple(tag.strip() for tag in TAG_SPLIT.split(data["tags"] or "") if tag.strip()),
            valid_from=data["valid_from"],
            valid_until=data["valid_until"],
        )
        return ArticleContent(**values)

    def add_service_errors(self, errors: dict[str, list[str]]) -> None:
        """Show a service's per-field errors on the form (category_id is the category field here)."""
        for name, messages in errors.items():
            target = "category" if name == "category_id" else name
            for message in messages if isinstance(messages, list) else [messages]:
                self.add_error(target if target in self.fields else None, message)


class NoteForm(forms.Form):
    note = forms.CharField(label="审核意见", required=False, max_length=500, widget=forms.Textarea(attrs={"rows": 2}))


class ReasonForm(forms.Form):
    reason = forms.CharField(label="撤回原因", max_length=500, widget=forms.Textarea(attrs={"rows": 2}))


class PublicSearchForm(forms.Form):
    q = forms.CharField(label="搜索", required=False, max_length=200)
    kind = forms.ChoiceField(
        label="类型",
        required=False,
        choices=[("", "全部"), (ArticleKind.GUIDE, "办事指南"), (ArticleKind.FAQ, "常见问题")],
    )


class StaffSearchForm(forms.Form):
    q = forms.CharField(label="搜索", required=False, max_length=200)
    kind = forms.ChoiceField(label="类型", required=False, choices=[("", "全部类型"), *ArticleKind.choices])
    status = forms.ChoiceField(label="状态", required=False, choices=[("", "全部状态"), *ArticleStatus.choices])
