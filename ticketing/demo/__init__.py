"""The demo city (Shenyang, lines 12345 and 8890) and the demo request texts, kept as data.

`city.json` holds regions and departments, `requests.json` the request texts the demo seed turns into
tickets. Both are the project's own demo values (see each file's "note"); `manage.py seed_demo` loads them
through `ticketing.directory` and `ticketing.services`.
"""

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from ticketing.defaults import DEFAULT_CATEGORIES
from ticketing.models import AppealType, DepartmentKind, ExternalTarget, RegionLevel, Urgency

DEMO_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class DemoRegion:
    code: str
    name: str
    level: int
    parent: str | None


@dataclass(frozen=True)
class DemoDepartment:
    code: str
    name: str
    kind: str
    parent: str | None
    jurisdiction: tuple[str, ...]
    accepts_dispatch: bool
    duty_phone: str
    responsibilities: tuple[str, ...]


@dataclass(frozen=True)
class DemoRequest:
    title: str
    content: str
    appeal_type: str
    category: tuple[str, str]
    urgency: str
    department: str
    location: str
    reply: str
    answer: str | None = None
    assisting: tuple[str, ...] = ()
    external_target: str | None = None


@dataclass(frozen=True)
class DemoCity:
    province: str
    name: str
    hotline_lines: tuple[str, ...]
    regions: tuple[DemoRegion, ...]
    departments: tuple[DemoDepartment, ...]


def _read(name: str) -> dict[str, Any]:
    with (DEMO_DIR / name).open(encoding="utf-8") as handle:
        data: dict[str, Any] = json.load(handle)
    return data


@cache
def load_city() -> DemoCity:
    data = _read("city.json")
    return DemoCity(
        province=data["city"]["province"],
        name=data["city"]["name"],
        hotline_lines=tuple(data["city"]["hotline_lines"]),
        regions=tuple(
            DemoRegion(code=r["code"], name=r["name"], level=r["level"], parent=r["parent"]) for r in data["regions"]
        ),
        departments=tuple(
            DemoDepartment(
                code=d["code"],
                name=d["name"],
                kind=d["kind"],
                parent=d["parent"],
                jurisdiction=tuple(d["jurisdiction"]),
                accepts_dispatch=d.get("accepts_dispatch", True),
                duty_phone=d["duty_phone"],
                responsibilities=tuple(d["responsibilities"]),
            )
            for d in data["departments"]
        ),
    )


@cache
def load_requests() -> tuple[DemoRequest, ...]:
    return tuple(
        DemoRequest(
            title=r["title"],
            content=r["content"],
            appeal_type=r["appeal_type"],
            category=(r["category"][0], r["category"][1]),
            urgency=r["urgency"],
            department=r["department"],
            location=r["location"],
            reply=r["reply"],
            answer=r.get("answer"),
            assisting=tuple(r.get("assisting", ())),
            external_target=r.get("external_target"),
        )
        for r in _read("requests.json")["requests"]
    )


def problems() -> list[str]:
    """Inconsistencies between the two files and the default category tree; empty when all is well.

    The seed refuses to run on a non-empty list, so a typo in the data fails loudly instead of producing
    tickets without a category or a department.
    """
    city = load_city()
    found: list[str] = []
    region_codes: set[str] = set()
    for region in city.regions:
        if region.level not in RegionLevel.values:
            found.append(f"区划 {region.code} 的层级 {region.level} 无效")
        if region.parent is not None and region.parent not in region_codes:
            found.append(f"区划 {region.code} 的上级 {region.parent} 未在其之前定义")
        region_codes.add(region.code)
    departments: dict[str, DemoDepartment] = {}
    for department in city.departments:
        if department.kind not in DepartmentKind.values:
            found.append(f"单位 {department.code} 的类型 {department.kind} 无效")
        if department.parent is not None and department.parent not in departments:
            found.append(f"单位 {department.code} 的上级 {department.parent} 未在其之前定义")
        found.extend(
            f"单位 {department.code} 的管辖区划 {code} 不存在"
            for code in department.jurisdiction
            if code not in region_codes
        )
        if department.accepts_dispatch and not 2 <= len(department.responsibilities) <= 6:
            found.append(f"单位 {department.code} 的权责清单应有 2–6 条")
        departments[department.code] = department
    categories = {(first, second) for first, children in DEFAULT_CATEGORIES for second in children}
    for index, request in enumerate(load_requests(), start=1):
        if request.appeal_type not in AppealType.values or request.urgency not in Urgency.values:
            found.append(f"第 {index} 条诉求的诉求类型或紧急程度无效")
        if request.external_target is not None and request.external_target not in ExternalTarget.values:
            found.append(f"第 {index} 条诉求的转外部去向 {request.external_target} 无效")
        if request.category not in categories:
            found.append(f"第 {index} 条诉求的分类 {'/'.join(request.category)} 不在默认分类中")
        for code in (request.department, *request.assisting):
            if code not in departments or not departments[code].accepts_dispatch:
                found.append(f"第 {index} 条诉求的单位 {code} 不存在或不接收派单")
        if request.department in request.assisting:
            found.append(f"第 {index} 条诉求的主办单位同时列为协办单位")
        if request.appeal_type == "inquiry" and not request.answer and not request.external_target:
            found.append(f"第 {index} 条咨询缺少即时答复口径（answer）")
    return found
