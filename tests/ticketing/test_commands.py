"""The set-up commands: `import_categories` and `seed_demo`."""

import json
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from ticketing import demo
from ticketing.defaults import DEFAULT_CATEGORIES
from ticketing.models import (
    Category,
    Department,
    ResponsibilityItem,
    Role,
    Ticket,
    TicketEvent,
    User,
)
from ticketing.workflow import Status

SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
TAXONOMY = SHARED_DATA / "category_taxonomy.jsonl"
# Labels of the real messages in ../shared/data; the default tree must spell them the same way.
MESSAGE_LABELS = ["城乡建设", "劳动和社会保障", "教育文体", "商贸旅游", "卫生计生", "环境保护", "交通运输"]


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def write_lines(path: Path, rows: list[object]) -> Path:
    path.write_text(
        "\n".join(row if isinstance(row, str) else json.dumps(row, ensure_ascii=False) for row in rows) + "\n",
        encoding="utf-8",
    )
    return path


def tree() -> dict[str, set[str]]:
    return {
        top.name: {child.name for child in top.children.all()}
        for top in Category.objects.filter(parent=None).prefetch_related("children")
    }


# ---------------------------------------------------------------------------------------------------------
# import_categories


def test_default_tree_has_the_message_labels_and_a_sane_shape():
    names = [first for first, _children in DEFAULT_CATEGORIES]
    assert set(MESSAGE_LABELS) <= set(names)
    assert {"水电气暖", "公共安全", "民政与社会事务", "市场监管", "农业农村", "政务服务", "其他"} <= set(names)
    assert len(names) == len(set(names))
    for first, children in DEFAULT_CATEGORIES:
        assert 4 <= len(children) <= 10, first
        assert len(children) == len(set(children)), first


@pytest.mark.django_db
def test_import_categories_loads_the_default_tree():
    out = run("import_categories")

    expected = {first: set(children) for first, children in DEFAULT_CATEGORIES}
    assert tree() == expected
    second_total = sum(len(c) for c in expected.values())
    assert f"一级分类 {len(expected)} 个、二级分类 {second_total} 个" in out
    assert f"本次新建一级分类 {len(expected)} 个、二级分类 {second_total} 个" in out


@pytest.mark.django_db
def test_import_categories_twice_changes_nothing():
    run("import_categories")
    ids = sorted(Category.objects.values_list("id", "sort_order"))

    out = run("import_categories")

    assert sorted(Category.objects.values_list("id", "sort_order")) == ids
    assert "本次新建一级分类 0 个、二级分类 0 个" in out


@pytest.mark.django_db
@pytest.mark.skipif(not TAXONOMY.exists(), reason=f"共享数据不在此机器上：{TAXONOMY}")
def test_import_categories_from_the_shared_taxonomy():
    out = run("import_categories", str(TAXONOMY))

    rows = [json.loads(line) for line in TAXONOMY.read_text(encoding="utf-8").splitlines() if line.strip()]
    firsts = {r["level1"] for r in rows}
    pairs = {(r["level1"], r["level2"]) for r in rows}
    assert (len(firsts), len(pairs)) == (15, 118)
    assert Category.objects.filter(parent=None).count() == 15
    assert Category.objects.filter(parent__isnull=False).count() == 118
    assert {
        (c.parent.name, c.name) for c in Category.objects.filter(parent__isnull=False).select_related("parent")
    } == (pairs)
    assert "一级分类 15 个、二级分类 118 个" in out

    again = run("import_categories", str(TAXONOMY))
    assert "本次新建一级分类 0 个、二级分类 0 个" in again
    assert Category.objects.count() == 15 + 118


@pytest.mark.django_db
def test_import_categories_accepts_first_second_keys_and_collapses_duplicates(tmp_path):
    path = write_lines(
        tmp_path / "tree.jsonl",
        [
            {"first": "水电气暖", "second": "供暖"},
            {"first": "水电气暖", "second": "供暖"},
            "",
            {"level1": "水电气暖", "level2": "燃气", "level3": "燃气泄漏"},
            {"first": "其他"},
        ],
    )

    out = run("import_categories", str(path))

    assert tree() == {"水电气暖": {"供暖", "燃气"}, "其他": set()}
    assert "一级分类 2 个、二级分类 2 个" in out


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([{"level1": "城乡建设", "level2": "物业管理"}, "{not json", {"level1": "教育文体"}], "第 2 行"),
        ([{"level1": "城乡建设"}, {"level1": "教育文体"}, {"level2": "物业管理"}], "第 3 行缺少一级分类"),
        ([{"level1": "城乡建设"}, ["城乡建设", "物业管理"]], "第 2 行不是 JSON 对象"),
        ([{"level1": "城乡建设", "level2": "长" * 65}], "第 1 行"),
    ],
)
def test_a_bad_file_names_the_line_and_imports_nothing(tmp_path, rows, message):
    path = write_lines(tmp_path / "bad.jsonl", rows)

    with pytest.raises(CommandError, match=message):
        run("import_categories", str(path))

    assert not Category.objects.exists()


@pytest.mark.django_db
def test_a_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(CommandError, match="找不到文件"):
        run("import_categories", str(tmp_path / "absent.jsonl"))
    assert not Category.objects.exists()


# ---------------------------------------------------------------------------------------------------------
# seed_demo


def test_demo_data_is_consistent():
    assert demo.problems() == []
    requests = demo.load_requests()
    assert len(requests) >= 40
    assert {r.appeal_type for r in requests} == {"inquiry", "help", "complaint", "report", "suggestion", "praise"}
    city = demo.load_city()
    assert city.hotline_lines == ("12345", "8890")
    codes = {r.code: r.name for r in city.regions}
    assert codes["210100"] == "沈阳市"
    assert {"210102", "210103", "210104", "210105", "210106", "210112"} <= set(codes)
    assert all(len(code) in (6, 9, 12) for code in codes)


@pytest.mark.django_db
def test_seed_demo_builds_the_city_and_tickets_in_every_state():
    out = run("seed_demo", "--tickets", "40")

    assert Ticket.objects.count() == 40
    assert set(Ticket.objects.values_list("status", flat=True)) == set(Status.values)
    assert set(User.objects.values_list("role", flat=True)) == set(Role.values)
    assert Department.objects.count() >= 40
    centre = Department.objects.get(code="SY-12345")
    assert not centre.accepts_dispatch
    for department in Department.objects.filter(accepts_dispatch=True):
        assert 2 <= department.responsibilities.count() <= 6, department.name
    assert ResponsibilityItem.objects.count() > 80
    assert User.objects.get(username="admin").is_superuser
    assert User.objects.get(username="agent").check_password("demo-agent-2026")

    created = TicketEvent.objects.filter(kind="created")
    assert set(created.values_list("ticket_id", flat=True)) == set(Ticket.objects.values_list("id", flat=True))
    # Backdated through the pinned clock: events follow each other in time, over the last month.
    times = list(TicketEvent.objects.order_by("id").values_list("created_at", flat=True))
    assert times == sorted(times)
    now = timezone.now()
    assert min(times) > now - timedelta(days=31)
    assert max(times) <= now
    assert {"12345", "8890"} == set(Ticket.objects.values_list("hotline_line", flat=True))

    # Open tickets in each deadline state: the seed rotates fresh / near the deadline / late.
    dispatched = Ticket.objects.filter(status=Status.DISPATCHED)
    accepted = Ticket.objects.filter(status=Status.ACCEPTED)
    assert dispatched.filter(accept_due_at__lt=now).exists() or accepted.filter(reply_due_at__lt=now).exists()
    assert (
        dispatched.filter(accept_warning_at__lte=now, accept_due_at__gt=now).exists()
        or accepted.filter(reply_warning_at__lte=now, reply_due_at__gt=now).exists()
    )

    for status in Status:
        assert str(status.label) in out
    assert "demo-admin-2026" in out
    assert out.count("demo-admin-2026") == 1


@pytest.mark.django_db
def test_seed_demo_if_empty_leaves_existing_data_alone():
    run("seed_demo", "--tickets", "10")
    events = TicketEvent.objects.count()

    out = run("seed_demo", "--if-empty", "--tickets", "10")

    assert "演示数据已存在" in out
    assert Ticket.objects.count() == 10
    assert TicketEvent.objects.count() == events


@pytest.mark.django_db
def test_seed_demo_if_empty_seeds_an_empty_database():
    run("seed_demo", "--if-empty", "--tickets", "10")
    assert Ticket.objects.count() == 10


@pytest.mark.django_db
def test_seed_demo_imports_messages_and_reports_bad_lines(tmp_path):
    path = write_lines(
        tmp_path / "messages.jsonl",
        [
            {
                "id": "1001",
                "title": "咨询小学入学政策",
                "body": "请问孩子户籍和房产不一致，应当在哪里报名？",
                "created_at": "2019-05-06 08:30:00",
                "label": "教育文体",
            },
            {
                "id": "1002",
                "title": "小区楼下餐馆油烟扰民",
                "body": "油烟直排，多次投诉无果。" + "很" * 12000,
                "created_at": "2018-11-20 21:05:09",
                "label": "环境保护",
            },
            '{"id": "1003", "title": "缺少结尾',
        ],
    )

    out = run("seed_demo", "--tickets", "0", "--messages", str(path))

    tickets = {t.title: t for t in Ticket.objects.select_related("category")}
    assert set(tickets) == {"咨询小学入学政策", "小区楼下餐馆油烟扰民"}
    inquiry, complaint = tickets["咨询小学入学政策"], tickets["小区楼下餐馆油烟扰民"]
    assert inquiry.appeal_type == "inquiry"
    assert complaint.appeal_type == "complaint"
    assert complaint.category.name == "环境保护" and complaint.category.parent_id is None
    assert len(complaint.content) == 10000
    for ticket in tickets.values():
        assert ticket.status == Status.PENDING_DISPATCH
        assert ticket.channel == "web"
    assert timezone.localtime(inquiry.created_at).strftime("%Y-%m-%d %H:%M") == "2019-05-06 08:30"
    assert inquiry.number.split("-")[1] == "20190506"
    assert "导入 2 条" in out
    assert "第 3 行" in out
