"""`manage.py evaluate_routing`: separable data is routed right, the evaluated messages never reach the
history, and the report ends with the JSON figures."""

import json
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import transaction

from routing.management.commands.evaluate_routing import LABEL_DEPARTMENTS, evaluate, folds, read_messages
from ticketing.models import Department, Ticket

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "messages_dev.jsonl"
TOPICS = {
    "城乡建设": ["物业收费", "电梯维修", "违章建筑", "小区绿化"],
    "劳动和社会保障": ["拖欠工资", "养老保险", "劳动合同", "失业金"],
    "教育文体": ["学校补课", "学区划分", "幼儿园收费", "教师师德"],
    "商贸旅游": ["预付卡退款", "景区门票", "旅行社合同", "农贸市场"],
    "卫生计生": ["医院挂号", "疫苗接种", "医生态度", "生育登记"],
    "环境保护": ["工厂废气", "污水偷排", "养殖场臭气", "危险废物"],
    "交通运输": ["公交线路", "出租车拒载", "客运站点", "货车超载"],
}


def write_messages(path: Path, *, per_label: int = 9, start: int = 0) -> Path:
    rows = []
    for label, subjects in TOPICS.items():
        for n in range(start, start + per_label):
            subject = subjects[n % len(subjects)]
            rows.append(
                {
                    "id": f"{label}-{n}",
                    "title": f"关于{subject}的问题",
                    "body": f"{subject}问题一直没有解决，{subjects[(n + 1) % len(subjects)]}也有类似情况（{n}）。",
                    "label": label,
                }
            )
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    return path


def last_json(output: str) -> dict:  # type: ignore[type-arg]
    lines = output.strip().splitlines()
    assert len(lines) > 5  # the readable report comes first
    result: dict = json.loads(lines[-1])  # type: ignore[type-arg]
    return result


def test_separable_messages_are_routed_right_by_cross_validation(db, tmp_path, capsys):  # type: ignore[no-untyped-def]
    data = write_messages(tmp_path / "messages.jsonl")
    tickets_before = Ticket.objects.count()

    call_command("evaluate_routing", data=data, folds=3, seed=7)

    result = last_json(capsys.readouterr().out)
    for key in ("accuracy", "macro_f1", "manual_share", "p50_ms", "p95_ms", "per_class", "auto_accuracy"):
        assert key in result
    assert result["messages"] == 63 and result["mode"] == "3-fold"
    assert result["accuracy"] >= 0.9 and result["macro_f1"] >= 0.9
    assert result["leak_checked_folds"] == 3
    assert set(result["per_class"]) == set(TOPICS)
    assert 0 <= result["manual_share"] <= 1
    # Everything was rolled back.
    assert Ticket.objects.count() == tickets_before
    assert not Department.objects.filter(code__in=LABEL_DEPARTMENTS.values()).exists()


def test_evaluated_fold_is_never_in_the_history(db, tmp_path):  # type: ignore[no-untyped-def]
    messages, _ = read_messages(write_messages(tmp_path / "messages.jsonl"))
    parts = folds(messages, k=3, seed=1)
    assert sorted(i for part in parts for i in part) == list(range(len(messages)))

    with transaction.atomic():
        report, checks, info = evaluate(messages=messages, train=None, k=3, seed=1, threshold=0.5)
        transaction.set_rollback(True)

    assert len(checks) == 3 and len(report.outcomes) == len(messages)
    for check in checks:
        assert check.evaluated_keys and not (check.history_keys & check.evaluated_keys)
    assert info["history_sizes"] == [len(messages) - len(part) for part in parts]


def test_identical_texts_stay_in_one_fold(tmp_path):
    messages, _ = read_messages(write_messages(tmp_path / "a.jsonl"))
    doubled = [*messages, *messages]
    for part in folds(doubled, k=4, seed=3):
        held = {doubled[i].text_key for i in part}
        rest = {m.text_key for i, m in enumerate(doubled) if i not in set(part)}
        assert not held & rest


def test_train_file_is_the_history(db, tmp_path, capsys):  # type: ignore[no-untyped-def]
    data = write_messages(tmp_path / "data.jsonl", per_label=4)
    train = write_messages(tmp_path / "train.jsonl", per_label=8, start=2)  # overlaps data in two per label

    call_command("evaluate_routing", data=data, train=train)

    result = last_json(capsys.readouterr().out)
    assert result["mode"] == "train_file" and result["messages"] == 28
    assert result["train_dropped_as_duplicates"] == 14
    assert result["history_sizes"] == [56 - 14]
    assert result["accuracy"] >= 0.9


@pytest.mark.skipif(not SHARED.exists(), reason="../shared/data/messages_dev.jsonl is not available")
def test_runs_on_the_real_messages(db, capsys):  # type: ignore[no-untyped-def]
    call_command("evaluate_routing", data=SHARED, folds=2, limit=80)
    result = last_json(capsys.readouterr().out)
    assert result["messages"] == 80 and 0 <= result["accuracy"] <= 1
