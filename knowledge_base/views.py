"""Pages: the citizens' FAQ and service-guide search, and the departments' pages (their articles, the edit
form of each kind, submit, the leads' review queue, version history with what changed).

Reads go through `selectors`, writes through `services`, exactly as the API does; a service's
refusal is shown on the page (a field error on the form, or a message).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_POST

from hotline.errors import ApplicationError, NotFound
from ticketing import selectors as ticket_selectors
from ticketing.models import User

from . import selectors, services
from .diff import FieldChange, field_changes
from .forms import FIELDS_BY_KIND, ArticleForm, NoteForm, PublicSearchForm, ReasonForm, StaffSearchForm, field_label
from .models import CONTENT_FIELDS, Article, ArticleKind, Audience, VersionStatus
from .services import ArticleContent

PAGE_SIZE = 20
LOGIN_URL = reverse_lazy("login")
staff_only = login_required(login_url=LOGIN_URL)

CONTENT_LABELS: dict[str, str] = {
    **{name: field_label(name) for name in CONTENT_FIELDS},
    "audience": "公开范围",
    "category_id": "诉求分类",
    "tags": "标签",
    "valid_from": "生效日期",
    "valid_until": "有效期至",
}


def _user(request: HttpRequest) -> User:
    assert isinstance(request.user, User)
    return request.user


def _results(request: HttpRequest, rows: Any, snippets: dict[int, Any]) -> tuple[Any, list[tuple[Article, Any]]]:
    """One page of `rows` (a queryset, read a page at a time, or search hits), each with its snippet."""
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    return page, [(article, snippets.get(article.id)) for article in page]


def _snippets(found: list[selectors.Found]) -> dict[int, Any]:
    # Snippets come from the search backend with the text escaped and only <mark> added.
    return {item.article.id: mark_safe(item.hit.snippet) for item in found}  # noqa: S308


def _query_without_page(request: HttpRequest) -> str:
    params = request.GET.copy()
    params.pop("page", None)
    return params.urlencode()


def sections(article: Article) -> list[tuple[str, str]]:
    """The filled body fields of an article, in the order its kind shows them, with their labels."""
    shown = [name for name in FIELDS_BY_KIND[article.kind] if name != "title"]
    if article.kind == ArticleKind.FAQ:
        return [(label, getattr(article, name)) for name, label in (("question", "问"), ("answer", "答"))]
    labels = {"answer": "正文"}
    return [(labels.get(name, field_label(name)), getattr(article, name)) for name in shown if getattr(article, name)]


def _readable(content: dict[str, Any] | None, categories: dict[int, str]) -> dict[str, Any] | None:
    """A version's content as a page shows it: the category's name, the audience's label."""
    if content is None:
        return None
    shown = dict(content)
    if shown.get("category_id"):
        shown["category_id"] = categories.get(shown["category_id"], str(shown["category_id"]))
    if shown.get("audience") in Audience.values:
        shown["audience"] = str(Audience(shown["audience"]).label)
    return shown


def _category_names() -> dict[int, str]:
    names: dict[int, str] = {}
    for top in ticket_selectors.category_tree():
        names[top.id] = top.name
        names.update({child.id: f"{top.name} / {child.name}" for child in top.children.all()})
    return names


def _changes(before: dict[str, Any] | None, after: dict[str, Any], categories: dict[int, str]) -> list[FieldChange]:
    shown_after = _readable(after, categories)
    assert shown_after is not None
    return field_changes(_readable(before, categories), shown_after, CONTENT_LABELS)


# ---------------------------------------------------------------------------------------------------------
# public


def public_search(request: HttpRequest) -> HttpResponse:
    form = PublicSearchForm(request.GET or None)
    text, kind = "", None
    if form.is_valid():
        text, kind = form.cleaned_data["q"].strip(), form.cleaned_data["kind"] or None
    filters = selectors.ArticleFilters(kind=kind)
    if text:
        found = selectors.article_search(text=text, user=None, filters=filters)
        page, items = _results(request, [item.article for item in found], _snippets(found))
    else:
        listed = selectors.articles_filtered(selectors.articles_public_listed(), filters).order_by(
            "-use_count", "title"
        )
        page, items = _results(request, listed, {})
    return render(
        request,
        "knowledge_base/public_search.html",
        {"form": form, "text": text, "page": page, "items": items, "query": _query_without_page(request)},
    )


def public_article(request: HttpRequest, pk: int) -> HttpResponse:
    article = selectors.article_get(article_id=pk, user=None)
    if article is None:
        raise Http404("文章不存在或未公开。")
    return render(request, "knowledge_base/public_article.html", {"article": article, "sections": sections(article)})


# ---------------------------------------------------------------------------------------------------------
# departments


@staff_only
def staff_list(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    form = StaffSearchForm(request.GET or None)
    text, kind, status = "", None, None
    if form.is_valid():
        text = form.cleaned_data["q"].strip()
        kind, status = form.cleaned_data["kind"] or None, form.cleaned_data["status"] or None
    writable = list(selectors.departments_writable_by(user=user))
    # Departments see what they maintain; the centre (who only answers with articles) sees all it may use.
    scope = request.GET.get("scope") or ("mine" if writable else "all")
    filters = selectors.ArticleFilters(kind=kind, status=status)
    if text:
        found = selectors.article_search(text=text, user=user, filters=filters)
        page, items = _results(request, [item.article for item in found], _snippets(found))
    else:
        base = (
            selectors.articles_maintained_by(user=user)
            if scope == "mine"
            else selectors.articles_visible_listed(user=user)
        )
        page, items = _results(request, selectors.articles_filtered(base, filters), {})
    return render(
        request,
        "knowledge_base/staff_list.html",
        {
            "form": form,
            "text": text,
            "scope": scope,
            "page": page,
            "items": items,
            "query": _query_without_page(request),
            "kinds": ArticleKind.choices if writable else [],
            "review_count": selectors.articles_awaiting_review_listed(user=user).count(),
        },
    )


def _visible(request: HttpRequest, pk: int) -> Article:
    article = selectors.article_get(article_id=pk, user=_user(request))
    if article is None:
        raise Http404("文章不存在，或您无权查看。")
    return article


def _form_page(request: HttpRequest, form: ArticleForm, **context: Any) -> HttpResponse:
    return render(request, "knowledge_base/article_form.html", {"form": form, **context})


def _service_refused(request: HttpRequest, error: ApplicationError, form: ArticleForm | None = None) -> None:
    if isinstance(error, NotFound):
        raise Http404(error.message)
    errors = error.extra.get("errors")
    if form is not None and isinstance(errors, dict) and errors:
        form.add_service_errors(errors)
    else:
        messages.error(request, error.message)


@staff_only
def article_new(request: HttpRequest, kind: str) -> HttpResponse:
    if kind not in ArticleKind.values:
        raise Http404("没有这种文章类型。")
    user = _user(request)
    departments = list(selectors.departments_writable_by(user=user))
    if not departments:
        raise PermissionDenied("只有单位的承办人员、负责人或系统管理员可以编写文章。")
    form = ArticleForm(request.POST or None, kind=kind, departments=departments)
    if request.method == "POST" and form.is_valid():
        try:
            article = services.article_create(
                actor=user,
                kind=kind,
                owner_department_id=form.cleaned_data["owner_department"],
                content=form.content(),
                change_note=form.cleaned_data["change_note"],
            )
        except ApplicationError as error:
            _service_refused(request, error, form)
        else:
            messages.success(request, "已保存为草稿（第 1 版）。请检查后提交审核。")
            return redirect("kb:staff-article", pk=article.id)
    return _form_page(request, form, kind_label=ArticleKind(kind).label, article=None)


@staff_only
def article_edit(request: HttpRequest, pk: int) -> HttpResponse:
    user = _user(request)
    article = _visible(request, pk)
    if not services.may_write(user, article.owner_department_id):
        raise PermissionDenied("只有维护单位的人员或系统管理员可以修改文章。")
    latest = selectors.article_latest_version(article=article)
    base = ArticleContent.from_json(latest.content) if latest is not None else None
    initial = ArticleForm.initial_from(base) if base is not None else None
    form = ArticleForm(request.POST or None, kind=article.kind, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            version = services.article_revise(
                article_id=article.id,
                actor=user,
                content=form.content(base),
                change_note=form.cleaned_data["change_note"],
            )
        except ApplicationError as error:
            _service_refused(request, error, form)
        else:
            messages.success(request, f"已保存第 {version.number} 版草稿。提交审核后由负责人审核发布。")
            return redirect("kb:staff-article", pk=article.id)
    in_review = latest is not None and latest.status == VersionStatus.IN_REVIEW
    return _form_page(request, form, kind_label=ArticleKind(article.kind).label, article=article, in_review=in_review)


@staff_only
def staff_article(request: HttpRequest, pk: int) -> HttpResponse:
    user = _user(request)
    article = _visible(request, pk)
    may_write = services.may_write(user, article.owner_department_id)
    may_review = services.may_review(user, article.owner_department_id)
    open_version = selectors.article_open_version(article=article) if (may_write or may_review) else None
    changes: list[FieldChange] = []
    if open_version is not None:
        published = selectors.article_published_version(article=article)
        before = published.content if published is not None else None
        changes = _changes(before, open_version.content, _category_names())
    return render(
        request,
        "knowledge_base/staff_article.html",
        {
            "article": article,
            "sections": sections(article),
            "open_version": open_version,
            "changes": changes,
            "may_write": may_write,
            "may_review": may_review,
            "note_form": NoteForm(),
            "reason_form": ReasonForm(),
        },
    )


def _next(request: HttpRequest, fallback: str) -> HttpResponseRedirect:
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return HttpResponseRedirect(target)
    return HttpResponseRedirect(fallback)


def _act(request: HttpRequest, pk: int, act: Callable[[User, int], Any], done: str) -> HttpResponse:
    article = _visible(request, pk)
    try:
        act(_user(request), article.id)
    except ApplicationError as error:
        _service_refused(request, error)
    else:
        messages.success(request, done)
    return _next(request, reverse("kb:staff-article", kwargs={"pk": article.id}))


def _field(request: HttpRequest, form_class: type[NoteForm] | type[ReasonForm], name: str) -> str:
    form = form_class(request.POST)
    return str(form.cleaned_data[name]) if form.is_valid() else str(request.POST.get(name, ""))[:500]


@staff_only
@require_POST
def article_submit(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(
        request,
        pk,
        lambda user, article_id: services.article_submit(article_id=article_id, actor=user),
        "已提交审核。",
    )


@staff_only
@require_POST
def article_approve(request: HttpRequest, pk: int) -> HttpResponse:
    note = _field(request, NoteForm, "note")
    return _act(
        request,
        pk,
        lambda user, article_id: services.article_approve(article_id=article_id, actor=user, note=note),
        "审核通过，已发布。",
    )


@staff_only
@require_POST
def article_reject(request: HttpRequest, pk: int) -> HttpResponse:
    note = _field(request, NoteForm, "note")
    return _act(
        request,
        pk,
        lambda user, article_id: services.article_reject(article_id=article_id, actor=user, note=note),
        "已退回修改。",
    )


@staff_only
@require_POST
def article_withdraw(request: HttpRequest, pk: int) -> HttpResponse:
    reason = _field(request, ReasonForm, "reason")
    return _act(
        request,
        pk,
        lambda user, article_id: services.article_withdraw(article_id=article_id, actor=user, reason=reason),
        "已撤回，该文章不再对外提供。",
    )


@staff_only
def article_versions(request: HttpRequest, pk: int) -> HttpResponse:
    article = _visible(request, pk)
    history = list(selectors.article_versions_visible_to(article=article, user=_user(request)))
    categories = _category_names()
    rows = [
        (version, _changes(older.content if older is not None else None, version.content, categories))
        for version, older in zip(history, [*history[1:], None], strict=True)
    ]
    return render(request, "knowledge_base/versions.html", {"article": article, "rows": rows})


@staff_only
def review_queue(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    categories = _category_names()
    items = []
    for article in selectors.articles_awaiting_review_listed(user=user):
        pending = selectors.article_open_version(article=article)
        if pending is None or pending.status != VersionStatus.IN_REVIEW:
            continue
        published = selectors.article_published_version(article=article)
        before = published.content if published is not None else None
        items.append((article, pending, _changes(before, pending.content, categories)))
    return render(request, "knowledge_base/review_queue.html", {"items": items, "note_form": NoteForm()})
