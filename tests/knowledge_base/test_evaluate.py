"""`manage.py evaluate_answers`: the official replies as answer articles, queried by body and by title, in a
throwaway transaction."""

import json
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from knowledge_base import services
from knowledge_base.models import Article
from knowledge_base.search.models import SearchEntry
from knowledge_base.services import ArticleContent, ImportRow
from ticketing.models import Department, User

pytestmark = pytest.mark.django_db

ROWS = [
    (
        "A3区桂花小区物业乱收停车费",
        "桂花小区物业从上个月开始按每月三百元收取地面停车费，没有公示收费依据，业主委员会也不知情。",
        "经核查，桂花小区地面停车收费未经业主大会同意，区住房和城乡建设局已责令物业公司停止收费并退还已收费用。",
    ),
    (
        "星沙大道路灯夜间不亮",
        "星沙大道东段的路灯已经连续一周晚上不亮，行人和车辆通行很不安全，请尽快维修。",
        "经现场查看，星沙大道东段路灯线路因施工被挖断，市政设施维护中心已完成抢修，路灯恢复照明。",
    ),
    (
        "咨询灵活就业人员养老保险缴费基数",
        "我是自由职业者，想以灵活就业身份参加养老保险，请问缴费基数有哪些档次，每月什么时候扣款？",
        "灵活就业人员可在上年度社会平均工资的百分之六十至百分之三百之间自主选择缴费基数，按月委托银行扣款。",
    ),
    (
        "希望解决学校周边交通拥堵",
        "每天早上送孩子上学，实验小学门口车辆乱停，道路堵得水泄不通，希望增加交警疏导。",
        "交警大队已在实验小学上下学时段安排警力疏导交通，并在学校周边增设临时停车泊位和禁停标志。",
    ),
    (
        "餐馆油烟直排影响居民生活",
        "楼下新开的一家烧烤店油烟直接排放到居民楼，没有安装油烟净化设备，晚上窗户都不能开。",
        "区生态环境局执法人员现场检查，该烧烤店未安装油烟净化设施，已责令限期整改并依法处罚。",
    ),
    (
        "农村危房改造补助申请",
        "我家房屋年久失修，墙体开裂，请问农村危房改造补助怎么申请，需要什么条件？",
        "农村危房改造补助对象为低保户、分散供养特困人员等困难群众，可向村委会提出申请，经乡镇审核、县级审批后实施。",
    ),
]


def write_rows(path: Path, extra: list[Any] | None = None) -> Path:
    lines = [
        json.dumps(
            {"id": str(n), "title": t, "body": b, "created_at": "2019-05-01 10:00:00", "reply": r}, ensure_ascii=False
        )
        for n, (t, b, r) in enumerate(ROWS, start=1)
    ]
    lines += [row if isinstance(row, str) else json.dumps(row, ensure_ascii=False) for row in extra or []]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def evaluate(*args: str) -> tuple[str, dict[str, Any]]:
    out = StringIO()
    call_command("evaluate_answers", *args, stdout=out, stderr=StringIO())
    text = out.getvalue()
    return text, json.loads(text.strip().splitlines()[-1])


def test_metrics_are_reported_and_an_exact_title_finds_its_own_reply_first(org, tmp_path):
    path = write_rows(tmp_path / "replies.jsonl", extra=["{broken", {"id": "9", "title": "缺答复", "body": "正文"}])
    before = (Department.objects.count(), User.objects.count(), SearchEntry.objects.count())

    text, result = evaluate("--data", str(path))

    assert {"recall_at_1", "recall_at_5", "mrr", "title_recall_at_5", "title_recall_at_1", "title_mrr"} <= set(result)
    assert (result["rows"], result["skipped"], result["k"]) == (len(ROWS), 2, 10)
    # Each title is its own article's title: the exact title must rank that reply first.
    assert result["title_recall_at_1"] == 1.0 and result["title_mrr"] == 1.0
    for name in ("recall_at_1", "recall_at_5", "mrr"):
        assert 0.0 <= result[name] <= 1.0
    assert result["recall_at_1"] <= result["recall_at_5"]
    lines = text.splitlines()
    assert any(line.startswith("留言正文") for line in lines) and any(line.startswith("仅用标题") for line in lines)
    # Nothing is left behind: articles, the temporary department and user, and index entries are gone.
    assert not Article.objects.exists()
    assert (Department.objects.count(), User.objects.count(), SearchEntry.objects.count()) == before


def test_articles_already_in_the_database_do_not_compete(org, tmp_path):
    # The same replies, already imported and published for the bureau, must not take the evaluation's hits.
    for number, (title, _body, reply) in enumerate(ROWS, start=1):
        services.article_import(
            source="replies",
            row=ImportRow(
                source_key=str(number), kind="faq", content=ArticleContent(title=title, question=title, answer=reply)
            ),
            owner_department_id=org.bureau.id,
            actor=org.administrator,
        )
    _text, result = evaluate("--data", str(write_rows(tmp_path / "replies.jsonl")))
    assert result["title_recall_at_1"] == 1.0
    assert Article.objects.count() == len(ROWS)


def test_limit_and_bad_input(org, tmp_path):
    _text, result = evaluate("--data", str(write_rows(tmp_path / "replies.jsonl")), "--limit", "2")
    assert result["rows"] == 2
    with pytest.raises(CommandError, match="找不到文件"):
        evaluate("--data", str(tmp_path / "missing.jsonl"))
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n", encoding="utf-8")
    with pytest.raises(CommandError, match="没有可用的记录"):
        evaluate("--data", str(empty))
