"""Writes on the organisation around tickets: regions, departments, people, categories, policies.

The seed and import commands use these; day-to-day edits happen in the admin.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.db import transaction

from hotline.errors import ApplicationError

from .models import Category, DeadlinePolicy, Department, Region, ResponsibilityItem, Role, User


@transaction.atomic
def region_upsert(*, code: str, name: str, level: int, parent_code: str | None = None) -> Region:
    parent = Region.objects.get(code=parent_code) if parent_code else None
    region, _created = Region.objects.update_or_create(
        code=code, defaults={"name": name, "level": level, "parent": parent}
    )
    return region


@dataclass(frozen=True)
class DepartmentInput:
    code: str
    name: str
    kind: str
    parent_code: str | None = None
    jurisdiction_codes: Sequence[str] = ()
    responsibilities: Sequence[str] = ()
    accepts_dispatch: bool = True
    contact_name: str = ""
    contact_phone: str = ""
    duty_phone: str = ""


@transaction.atomic
def department_upsert(*, data: DepartmentInput) -> Department:
    parent = Department.objects.get(code=data.parent_code) if data.parent_code else None
    department, _created = Department.objects.update_or_create(
        code=data.code,
        defaults={
            "name": data.name,
            "kind": data.kind,
            "parent": parent,
            "accepts_dispatch": data.accepts_dispatch,
            "contact_name": data.contact_name,
            "contact_phone": data.contact_phone,
            "duty_phone": data.duty_phone,
        },
    )
    regions = list(Region.objects.filter(code__in=data.jurisdiction_codes))
    missing = sorted(set(data.jurisdiction_codes) - {r.code for r in regions})
    if missing:
        raise ApplicationError(f"未知的区划代码：{', '.join(missing)}", code="unknown_region")
    department.jurisdiction.set(regions)
    # The input is the whole list: items no longer in it are removed.
    department.responsibilities.exclude(title__in=list(data.responsibilities)).delete()
    existing = set(department.responsibilities.values_list("title", flat=True))
    ResponsibilityItem.objects.bulk_create(
        ResponsibilityItem(department=department, title=title)
        for title in data.responsibilities
        if title not in existing
    )
    return department


@transaction.atomic
def user_upsert(
    *,
    username: str,
    password: str,
    role: str,
    full_name: str = "",
    department_codes: Iterable[str] = (),
    is_staff: bool = False,
) -> User:
    if role not in Role.values:
        raise ApplicationError(f"未知角色：{role}", code="unknown_role")
    user = User.objects.filter(username=username).first() or User(username=username)
    user.role = role
    user.full_name = full_name
    user.is_staff = is_staff or role == Role.ADMINISTRATOR
    user.is_superuser = role == Role.ADMINISTRATOR
    user.set_password(password)
    user.save()
    codes = list(department_codes)
    departments = list(Department.objects.filter(code__in=codes))
    if len(departments) != len(set(codes)):
        raise ApplicationError("用户所属单位编码有误。", code="unknown_department")
    user.departments.set(departments)
    return user


@dataclass(frozen=True)
class CategoryImportResult:
    first_level_created: int
    second_level_created: int
    first_level_total: int
    second_level_total: int


@transaction.atomic
def category_import(*, pairs: Iterable[tuple[str, str | None]]) -> CategoryImportResult:
    """Load (first level, second level) pairs; existing categories are kept, new ones added in order."""
    created_first = created_second = 0
    seen_first: set[str] = set()
    seen_second: set[tuple[str, str]] = set()
    parents: dict[str, Category] = {}
    next_order = (Category.objects.order_by("-sort_order").values_list("sort_order", flat=True).first() or 0) + 1
    for first, second in pairs:
        first = (first or "").strip()
        second = (second or "").strip() or None
        if not first:
            raise ApplicationError("一级分类名称不能为空。", code="empty_category")
        if len(first) > 64 or (second and len(second) > 64):
            raise ApplicationError(f"分类名称过长：{first}/{second}", code="category_too_long")
        if first not in parents:
            parent, created = Category.objects.get_or_create(
                name=first, parent=None, defaults={"sort_order": next_order}
            )
            next_order += created
            created_first += created
            parents[first] = parent
        seen_first.add(first)
        if second and (first, second) not in seen_second:
            _child, created = Category.objects.get_or_create(
                name=second, parent=parents[first], defaults={"sort_order": next_order}
            )
            next_order += created
            created_second += created
            seen_second.add((first, second))
    return CategoryImportResult(
        first_level_created=created_first,
        second_level_created=created_second,
        first_level_total=len(seen_first),
        second_level_total=len(seen_second),
    )


@transaction.atomic
def deadline_policy_upsert(
    *, name: str, category_path: tuple[str, str | None] | None = None, **values: object
) -> DeadlinePolicy:
    category = None
    if category_path:
        first, second = category_path
        category = Category.objects.get(name=first, parent=None)
        if second:
            category = Category.objects.get(name=second, parent=category)
    policy, _created = DeadlinePolicy.objects.update_or_create(name=name, defaults={**values, "category": category})
    return policy
