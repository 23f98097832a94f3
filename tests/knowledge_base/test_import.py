"""`manage.py import_articles`: JSON Lines and Excel, per-row errors, good rows kept, idempotent re-import."""

import json
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from openpyxl import Workbook

from knowledge_base import importers
from knowledge_base.models import Article, ArticleStatus, ArticleVersion, Audience

pytestmark = pytest.mark.django_db

SHARED_REPLIES = Path(__file__).resolve().parents[3] / "shared" / "data" / "replies.jsonl"


def reply_row(key: str, title: str = "小区物业乱收停车费", **overrides: Any) -> dict[str, Any]:
    return {
        "id": key,
        "title": title,
        "body": f"{title}，业主多次反映没有结果，请有关部门处理。",
        "created_at": "2019-04-25 09:32:09",
        "reply": f"关于“{title}”的问题，经调查核实，已责成物业公司整改。",
        "replied_at": "2019-05-10 10:00:00",
        **overrides,
    }


def write_jsonl(path: Path, rows: list[object]) -> Path:
    path.write_text(
        "\n".join(row if isinstance(row, str) else json.dumps(row, ensure_ascii=False) for row in rows) + "\n",
        encoding="utf-8",
    )
    return path


def run(*args: str) -> tuple[str, str, CommandError | None]:
    out, err = StringIO(), StringIO()
    try:
        call_command("import_articles", *args, stdout=out, stderr=err)
    except CommandError as error:
        return out.getvalue(), err.getvalue(), error
    return out.getvalue(), err.getvalue(), None


def summary(out: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


# --- JSON Lines ----------------------------------------------------------------------------------------


def test_replies_become_faq_articles_published_at_once(org, tmp_path):
    path = write_jsonl(tmp_path / "replies.jsonl", [reply_row("1"), reply_row("2", "路灯不亮")])
    out, err, failed = run(str(path), "--owner-department", org.bureau.code)

    assert failed is None
    assert summary(out) | {"errors": []} == {
        "source": "replies",
        "rows": 2,
        "created": 2,
        "updated": 0,
        "unchanged": 0,
        "failed": 0,
        "unused_columns": [],
        "errors": [],
    }
    article = Article.objects.get(source="replies", source_key="2")
    assert (article.kind, article.status, article.audience) == ("faq", ArticleStatus.PUBLISHED, Audience.INTERNAL)
    assert article.title == "路灯不亮"
    assert article.question.startswith("路灯不亮，业主多次反映")
    assert article.answer.startswith("关于“路灯不亮”的问题")
    assert article.owner_department == org.bureau and article.published_version == 1
    # stderr is not a terminal here: plain progress lines, ending at 100%.
    assert err.strip().splitlines()[-1] == "导入：2/2（100%）"


def test_bad_rows_are_reported_by_row_and_column_and_the_good_rows_are_kept(org, tmp_path):
    rows: list[object] = [
        reply_row("1"),
        reply_row("2", reply=""),  # an FAQ needs its answer
        "{not json",
        reply_row("", "没有编号"),
        reply_row("1", "编号重复"),
        reply_row("5", kind="问答"),
        reply_row("6", valid_until="明年"),
        reply_row("7", "x" * 201),
        reply_row("8", "第二条好数据"),
    ]
    path = write_jsonl(tmp_path / "replies.jsonl", rows)
    errors_file = tmp_path / "errors.json"
    out, _err, failed = run(str(path), "--owner-department", org.bureau.code, "--errors", str(errors_file))

    assert failed is not None and "7 行未导入" in str(failed)
    report = json.loads(errors_file.read_text(encoding="utf-8"))
    assert [(e["row"], e["field"]) for e in report["errors"]] == [
        (2, "reply"),
        (3, ""),
        (4, "id"),
        (5, "id"),
        (6, "kind"),
        (7, "valid_until"),
        (8, "title"),
    ]
    assert report["errors"][0]["message"] == "此项必填。"
    assert "与第 1 行重复" in report["errors"][3]["message"]
    assert (report["created"], report["failed"]) == (2, 7)
    assert summary(out)["errors"] == report["errors"]
    assert "第 2 行  reply  此项必填。" in out
    assert set(Article.objects.values_list("source_key", flat=True)) == {"1", "8"}


def test_importing_again_changes_only_what_changed(org, tmp_path):
    rows = [reply_row("1"), reply_row("2", "路灯不亮"), reply_row("3", "噪音扰民")]
    path = write_jsonl(tmp_path / "replies.jsonl", rows)
    run(str(path), "--owner-department", org.bureau.code)

    out, _err, failed = run(str(path), "--owner-department", org.bureau.code)
    assert failed is None
    assert (summary(out)["created"], summary(out)["updated"], summary(out)["unchanged"]) == (0, 0, 3)
    assert ArticleVersion.objects.count() == 3

    rows[1] = reply_row("2", "路灯不亮", reply="路灯已于 5 月 3 日修复。")
    write_jsonl(path, rows)
    out, _err, _failed = run(str(path), "--owner-department", org.bureau.code)
    assert (summary(out)["created"], summary(out)["updated"], summary(out)["unchanged"]) == (0, 1, 2)
    article = Article.objects.get(source_key="2")
    assert article.answer == "路灯已于 5 月 3 日修复。" and article.published_version == 2
    assert Article.objects.count() == 3


def test_a_withdrawn_article_is_not_brought_back_by_the_same_row(org, tmp_path):
    from knowledge_base import services

    path = write_jsonl(tmp_path / "replies.jsonl", [reply_row("1")])
    run(str(path), "--owner-department", org.bureau.code)
    article = Article.objects.get()
    services.article_withdraw(article_id=article.id, actor=org.administrator, reason="答复已过时")

    out, _err, _failed = run(str(path), "--owner-department", org.bureau.code)
    assert summary(out)["unchanged"] == 1
    article.refresh_from_db()
    assert article.status == ArticleStatus.WITHDRAWN


def test_phone_and_id_numbers_are_masked_before_storing(org, tmp_path):
    row = reply_row(
        "1",
        body="我的电话 13812345678，身份证 110101199003074518，请联系我。",
        reply="请致电 0731-84687030 咨询；已脱敏的 0000-00000000 保持原样。",
    )
    path = write_jsonl(tmp_path / "replies.jsonl", [row])
    run(str(path), "--owner-department", org.bureau.code)

    article = Article.objects.get()
    assert article.question == "我的电话 138****5678，身份证 110***********4518，请联系我。"
    assert article.answer == "请致电 073******7030 咨询；已脱敏的 0000-00000000 保持原样。"
    assert "13812345678" not in json.dumps(list(ArticleVersion.objects.values_list("content", flat=True)))


def test_source_kind_and_audience_options(org, tmp_path):
    path = write_jsonl(tmp_path / "guides.jsonl", [reply_row("1", kind="notice"), reply_row("2")])
    out, _err, failed = run(
        str(path),
        "--owner-department",
        org.bureau.code,
        "--source",
        "城建答复",
        "--kind",
        "policy",
        "--audience",
        "public",
    )
    assert failed is None and summary(out)["source"] == "城建答复"
    assert dict(Article.objects.values_list("source_key", "kind")) == {"1": "notice", "2": "policy"}
    assert set(Article.objects.values_list("audience", flat=True)) == {"public"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--owner-department", "NOPE"], "找不到启用的单位"),
        (["--owner-department", "B1", "--actor", "ghost"], "找不到启用的用户"),
        (["--owner-department", "B1", "--format", "xlsx"], "无法读取 Excel 文件"),
    ],
)
def test_whole_file_problems_stop_before_any_row(org, tmp_path, args, message):
    path = write_jsonl(tmp_path / "replies.jsonl", [reply_row("1")])
    _out, _err, failed = run(str(path), *args)
    assert failed is not None and message in str(failed)
    assert not Article.objects.exists()


def test_only_administrators_import(org, tmp_path):
    path = write_jsonl(tmp_path / "replies.jsonl", [reply_row("1")])
    out, _err, failed = run(str(path), "--owner-department", org.bureau.code, "--actor", org.lead.username)
    assert failed is not None
    assert summary(out)["errors"][0]["message"] == "只有系统管理员可以导入文章。"


def test_a_file_without_a_title_column_is_refused(org, tmp_path):
    path = write_jsonl(tmp_path / "rows.jsonl", [{"id": "1", "reply": "答复"}])
    _out, _err, failed = run(str(path), "--owner-department", org.bureau.code)
    assert failed is not None and "找不到标题列" in str(failed)


# --- Excel ---------------------------------------------------------------------------------------------


def write_xlsx(path: Path, header: list[str], rows: list[list[Any]]) -> Path:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    workbook.save(path)
    return path


GUIDE_HEADER = [
    "编号",
    "类型",
    "标题",
    "办理条件",
    "所需材料",
    "办理流程",
    "收费标准",
    "标签",
    "诉求分类",
    "有效期至",
    "备注",
]


def test_excel_guides_with_chinese_headers_and_bad_rows(org, tmp_path):
    from datetime import date, datetime

    path = write_xlsx(
        tmp_path / "guides.xlsx",
        GUIDE_HEADER,
        [
            [
                101,
                "办事指南",
                "物业服务投诉",
                "业主",
                "身份证",
                "1. 投诉",
                "免费",
                "物业、投诉",
                "城乡建设/物业管理",
                datetime(2027, 3, 31),
                "",
            ],
            [102, "办事指南", "缺材料的指南", "业主", None, "1. 投诉", "", "", "", None, ""],
            [103, "办事指南", "分类不存在", "业主", "身份证", "1. 投诉", "", "", "不存在的分类", None, ""],
            [None, None, None, None, None, None, None, None, None, None, None],
            [104, "指南", "类型写错", "业主", "身份证", "1", "", "", "", None, ""],
            [105, "guide", "有效期写错", "业主", "身份证", "1", "", "", "物业管理", "下个月", "备注不导入"],
            [106.0, "guide", "第二篇", "业主", "身份证", "1", "", "", "", "2027/1/5", ""],
        ],
    )
    out, _err, failed = run(str(path), "--owner-department", org.bureau.code)

    assert failed is not None
    report = summary(out)
    # Excel row numbers: the header is row 1, the empty row 5 is skipped but still counted.
    assert [(e["row"], e["field"], e["key"]) for e in report["errors"]] == [
        (3, "所需材料", "102"),
        (4, "诉求分类", "103"),
        (6, "类型", "104"),
        (7, "有效期至", "105"),
    ]
    assert report["unused_columns"] == ["备注"]
    guide = Article.objects.get(source="guides", source_key="101")
    assert (guide.kind, guide.fees, guide.category, guide.valid_until) == (
        "guide",
        "免费",
        org.category,
        date(2027, 3, 31),
    )
    assert sorted(guide.tags.values_list("name", flat=True)) == ["投诉", "物业"]
    assert Article.objects.get(source_key="106").valid_until == date(2027, 1, 5)
    assert Article.objects.count() == 2

    again, _err, _failed = run(str(path), "--owner-department", org.bureau.code)
    assert (summary(again)["created"], summary(again)["unchanged"]) == (0, 2)


def test_an_empty_workbook_is_refused(org, tmp_path):
    path = tmp_path / "empty.xlsx"
    Workbook().save(path)
    _out, _err, failed = run(str(path), "--owner-department", org.bureau.code)
    assert failed is not None and "是空的" in str(failed)


def test_progress_bar_on_a_terminal():
    class Terminal(StringIO):
        def isatty(self) -> bool:
            return True

    stream = Terminal()
    progress = importers.Progress(total=4, label="导入", stream=stream)
    for _ in range(4):
        progress.advance()
    progress.finish()
    frames = stream.getvalue().split("\r")
    assert frames[-1] == "导入 [" + "#" * 30 + "] 4/4 100%\n"
    assert frames[1].startswith("导入 [#######-")


# --- the real data -------------------------------------------------------------------------------------


@pytest.mark.skipif(not SHARED_REPLIES.exists(), reason=f"{SHARED_REPLIES} is not present (../shared/data)")
def test_the_first_50_real_replies_import_cleanly(org, tmp_path):
    lines = SHARED_REPLIES.read_text(encoding="utf-8").splitlines()[:50]
    path = tmp_path / "replies.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out, _err, failed = run(str(path), "--owner-department", org.bureau.code)

    assert failed is None, out
    assert summary(out)["created"] == 50 and summary(out)["unused_columns"] == []
    first = json.loads(lines[0])
    article = Article.objects.get(source="replies", source_key=first["id"])
    assert (article.title, article.kind) == (first["title"], "faq")
    assert article.answer == importers.mask_contacts(first["reply"])
    assert article.question == importers.mask_contacts(first["body"])
