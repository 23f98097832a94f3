"""The routing classifier: learns separable departments, says how sure it is, and is trained and loaded
the way routing uses it."""

import json
import os
import time

import pytest
from django.core.management import call_command

from routing import classifier
from routing.recommend import clear_caches

from ..helpers import make_ticket

TOPICS = {
    "NOISE": ("噪音", ["工地夜间施工噪音扰民", "广场舞噪音太大", "装修噪音影响休息", "酒吧噪音扰民"]),
    "WAGES": ("工资", ["公司拖欠工资三个月", "农民工工资被拖欠", "老板欠薪不还", "加班工资不发放"]),
    "SCHOOL": ("学校", ["学校违规补课收费", "学区划分不合理", "幼儿园乱收费", "学校食堂质量差"]),
}


def dataset() -> tuple[list[str], list[str]]:
    texts, labels = [], []
    for label, (_, titles) in TOPICS.items():
        for n, title in enumerate(titles * 3):
            texts.append(f"{title}\n{title}，第{n}次反映，请有关部门处理。")
            labels.append(label)
    return texts, labels


def test_separable_departments_are_learned_with_calibrated_probabilities():
    texts, labels = dataset()
    model = classifier.Model.fit(texts, labels)

    assert model.labels == sorted(TOPICS)
    for label, (_, titles) in TOPICS.items():
        predictions = model.predict(f"{titles[0]}的问题\n希望尽快解决")
        assert predictions[0].label == label
        assert 0.5 < predictions[0].probability <= 1
        assert abs(sum(p.probability for p in model.predict("随便说说", top=3)) - 1) < 1e-6
    assert model.temperature in classifier.TEMPERATURES


def test_terms_explain_the_choice():
    model = classifier.Model.fit(*dataset())
    best = model.predict("工地噪音扰民\n夜里施工噪音很大")[0]
    assert best.label == "NOISE" and "噪音" in best.terms


def test_unknown_words_do_not_move_the_answer():
    model = classifier.Model.fit(*dataset())
    assert model.predict("拖欠工资")[0].label == model.predict("拖欠工资 鳄鱼 彗星")[0].label


def test_save_load_round_trip(tmp_path):
    model = classifier.Model.fit(*dataset())
    path = tmp_path / "model.json"
    model.save(path)
    loaded = classifier.Model.load(path)
    assert loaded.labels == model.labels and loaded.temperature == model.temperature
    assert loaded.predict("学校乱收费")[0].label == model.predict("学校乱收费")[0].label == "SCHOOL"


def test_training_needs_texts():
    with pytest.raises(ValueError):
        classifier.Model.fit([], [])


def test_current_loads_lazily_and_follows_the_file(tmp_path, settings):
    path = tmp_path / "routing_model.json"
    settings.ROUTING_MODEL_PATH = path
    assert classifier.current() is None
    texts, labels = dataset()
    classifier.Model.fit(texts, labels).save(path)
    first = classifier.current()
    assert first is not None and classifier.current() is first
    classifier.Model.fit(texts[:12] + texts[12:24], labels[:12] + labels[12:24]).save(path)
    later = time.time() + 5
    os.utime(path, (later, later))
    assert classifier.current() is not first
    with classifier.override(None):
        assert classifier.current() is None


def test_train_router_from_a_file(db, tmp_path, capsys):  # type: ignore[no-untyped-def]
    data = tmp_path / "messages.jsonl"
    rows = [
        {"id": str(n), "title": t.split("\n")[0], "body": t.split("\n")[1], "department": label}
        for n, (t, label) in enumerate(zip(*dataset(), strict=True))
    ]
    data.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    output = tmp_path / "out.json"

    call_command("train_router", data=data, output=output)

    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["documents"] == len(rows) and summary["departments"] == 3
    assert classifier.Model.load(output).predict("欠薪")[0].label == "WAGES"


def test_train_router_from_handled_tickets(org, tmp_path, settings, capsys):
    settings.ROUTING_MODEL_PATH = tmp_path / "model.json"
    for _ in range(3):
        make_ticket(org, "closed", department=org.other_bureau, title="工地噪音扰民", content="夜间施工噪音很大。")
        make_ticket(org, "closed", department=org.bureau, title="物业收费太高", content="小区物业收费不合理。")
    make_ticket(org, "pending_dispatch", title="未派单的工单", content="不参与训练。")
    clear_caches()

    call_command("train_router")

    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["documents"] == 6 and summary["source"] == "database"
    model = classifier.current()
    assert model is not None and set(model.labels) == {org.bureau.code, org.other_bureau.code}
    assert model.predict("施工噪音")[0].label == org.other_bureau.code
