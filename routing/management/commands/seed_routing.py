"""`manage.py seed_routing`: the demo routing rules of `routing/demo/rules.json` (emergencies, legal routes,
utilities, wages, night-time building noise), written through `services.rule_create`. Rules already there
(same name) are left alone. Called by `seed_demo` by name when the routing app is installed."""

import json
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from routing import services
from routing.models import Rule
from ticketing.models import Category, Department, Region

DEMO = Path(__file__).resolve().parents[2] / "demo" / "rules.json"
LIST_FIELDS = ("appeal_types", "channels", "hotline_lines", "weekdays")
TEXT_FIELDS = ("description", "keyword_mode", "urgency", "emergency_target", "legal_route", "script")


def _ids(model: Any, field: str, values: list[str], what: str) -> list[int]:
    found = dict(model.objects.filter(**{f"{field}__in": values}).values_list(field, "id"))
    missing = [v for v in values if v not in found]
    if missing:
        raise CommandError(f"找不到{what}：{'、'.join(missing)}；请先运行 manage.py seed_demo。")
    return [found[v] for v in values]


def _category_ids(paths: list[str]) -> list[int]:
    ids = []
    for path in paths:
        top, _, child = path.partition("/")
        rows = (
            Category.objects.filter(name=child, parent__name=top)
            if child
            else Category.objects.filter(name=top, parent__isnull=True)
        )
        category = rows.first()
        if category is None:
            raise CommandError(f"找不到诉求分类「{path}」；请先运行 manage.py seed_demo。")
        ids.append(category.id)
    return ids


class Command(BaseCommand):
    help = "写入演示派单规则（routing/demo/rules.json）；已有同名规则则跳过。"

    def handle(self, *args: Any, **options: Any) -> None:
        specs = json.loads(DEMO.read_text(encoding="utf-8"))["rules"]
        created = 0
        with transaction.atomic():
            for spec in specs:
                if Rule.objects.filter(name=spec["name"]).exists():
                    continue
                fields: dict[str, Any] = {"name": spec["name"], "order": spec.get("order", 100)}
                fields.update({k: spec[k] for k in (*LIST_FIELDS, *TEXT_FIELDS) if k in spec})
                fields["keywords"] = "\n".join(spec.get("keywords", []))
                fields["patterns"] = "\n".join(spec.get("patterns", []))
                if "time_from" in spec:
                    fields["time_from"], fields["time_to"] = spec["time_from"], spec["time_to"]
                if "lead_department" in spec:
                    (fields["lead_department_id"],) = _ids(Department, "code", [spec["lead_department"]], "单位")
                try:
                    services.rule_create(
                        fields=fields,
                        category_ids=_category_ids(spec.get("categories", [])),
                        region_ids=_ids(Region, "code", spec.get("regions", []), "区划"),
                        assisting_department_ids=_ids(
                            Department, "code", spec.get("assisting_departments", []), "单位"
                        ),
                    )
                except ValidationError as error:
                    raise CommandError(f"规则「{spec['name']}」有误：{error.messages}") from None
                created += 1
        self.stdout.write(f"演示派单规则：新建 {created} 条，共 {Rule.objects.count()} 条。")
