"""`manage.py evaluate_routing --data FILE [--train FILE] [--folds 5]`: how often routing picks the right
department, and how fast.

Rows of FILE are shaped like ../shared/data/messages_dev.jsonl (id, title, body, label): a citizen message
and its first-level category. Each of the 7 labels stands for the demo city's department that handles that
field (`LABEL_DEPARTMENTS`):

    城乡建设 -> SY-ZJJ  市住房和城乡建设局        劳动和社会保障 -> SY-RSJ  市人力资源和社会保障局
    教育文体 -> SY-JYJ  市教育局                  商贸旅游       -> SY-SWJ  市商务局
    卫生计生 -> SY-WJW  市卫生健康委员会          环境保护       -> SY-HBJ  市生态环境局
    交通运输 -> SY-JTJ  市交通运输局

A recommendation of a sub-unit (市住建局物业监管处) counts for its parent's label; any other department is
wrong. A row may instead name a department code in `department`.

History: with `--train`, the messages of that file become handled tickets (closed, with their department);
without it, k-fold cross-validation on `--data` (stratified by label; identical texts stay in one fold). For
each fold the history alone is indexed (the database search backend's ticket index is rebuilt from it) and
the classifier is trained on it alone; then every held-out message is routed as a new request through
`routing.recommend.recommend`. No evaluated message is ever in the index or the classifier's training set:
the command checks it (fold by fold, and on every similar ticket cited as evidence) and stops if not.

Reported: accuracy and macro-F1 of the top recommendation over all messages, per-class precision, recall and
F1, the confusion matrix, the share sent to manual dispatch (top confidence below `ROUTING_AUTO_CONFIDENCE`,
or `--threshold`) with the accuracy of the rest, and recommend()'s latency p50/p95. Everything runs in a
transaction that is rolled back (the demo departments are created in it if the demo city is not seeded).
The last line is a JSON object.
"""

from __future__ import annotations

import json
import random
import secrets
import statistics
import time
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from hotline import clock
from hotline.errors import ApplicationError
from hotline.jsonl import JsonLinesError, read_json_lines
from knowledge_base import search
from knowledge_base.search import documents as search_documents
from knowledge_base.search.backends import DATABASE
from knowledge_base.search.backends import database as database_backend
from routing import classifier
from routing.recommend import clear_caches, recommend
from routing.types import RoutingInput
from ticketing import demo, directory
from ticketing.models import AppealType, Channel, Department, Region, Ticket
from ticketing.workflow import Status

LABEL_DEPARTMENTS: dict[str, str] = {
    "城乡建设": "SY-ZJJ",
    "劳动和社会保障": "SY-RSJ",
    "教育文体": "SY-JYJ",
    "商贸旅游": "SY-SWJ",
    "卫生计生": "SY-WJW",
    "环境保护": "SY-HBJ",
    "交通运输": "SY-JTJ",
}
OTHER = "（其他单位/无）"
TITLE_MAX = 200
THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8)


@dataclass(frozen=True)
class Message:
    line: int
    key: str
    title: str
    body: str
    label: str
    department_code: str

    @property
    def text_key(self) -> str:
        """Identical texts (after normalisation) are one message for the split."""
        return " ".join(unicodedata.normalize("NFKC", f"{self.title}\n{self.body}").split())


def read_messages(path: Path, *, limit: int | None = None) -> tuple[list[Message], list[tuple[int, str]]]:
    """Rows with a title or body and a label (or a `department` code); (line, reason) for the rest."""
    messages: list[Message] = []
    skipped: list[tuple[int, str]] = []
    try:
        for number, row in read_json_lines(path):
            if limit is not None and len(messages) >= limit:
                break
            if isinstance(row, str):
                skipped.append((number, row))
                continue
            title = str(row.get("title") or "").strip()
            body = str(row.get("body") or row.get("content") or "").strip()
            label = str(row.get("label") or "").strip()
            code = str(row.get("department") or "").strip() or LABEL_DEPARTMENTS.get(label, "")
            if not (title or body):
                skipped.append((number, "缺少 title 和 body"))
                continue
            if not code:
                skipped.append((number, f"标签「{label}」没有对应的单位" if label else "缺少 label"))
                continue
            messages.append(
                Message(
                    line=number,
                    key=str(row.get("id") or number),
                    title=(title or body)[:TITLE_MAX],
                    body=body or title,
                    label=label or code,
                    department_code=code,
                )
            )
    except JsonLinesError as error:
        raise CommandError(str(error)) from None
    return messages, skipped


def folds(messages: Sequence[Message], *, k: int, seed: int) -> list[list[int]]:
    """k lists of message positions: stratified by label, identical texts always together."""
    groups: dict[str, list[int]] = defaultdict(list)
    for position, message in enumerate(messages):
        groups[message.text_key].append(position)
    by_label: dict[str, list[list[int]]] = defaultdict(list)
    for members in groups.values():
        by_label[messages[members[0]].label].append(members)
    rng = random.Random(seed)
    result: list[list[int]] = [[] for _ in range(k)]
    offset = 0
    for label in sorted(by_label):
        label_groups = by_label[label]
        rng.shuffle(label_groups)
        for n, members in enumerate(label_groups):
            result[(n + offset) % k].extend(members)
        offset += len(label_groups)
    return [sorted(fold) for fold in result]


# ---------------------------------------------------------------------------------------------------------
# the organisation and the history


def ensure_departments(codes: Sequence[str]) -> dict[str, int]:
    """Department ids for the codes; the demo city is loaded first if any is missing (the caller's
    transaction decides whether that stays)."""
    found = dict(Department.objects.filter(code__in=codes).values_list("code", "id"))
    if len(found) < len(set(codes)):
        city = demo.load_city()
        for region in city.regions:
            if not Region.objects.filter(code=region.code).exists():
                directory.region_upsert(
                    code=region.code, name=region.name, level=region.level, parent_code=region.parent
                )
        existing = set(Department.objects.values_list("code", flat=True))
        for department in city.departments:
            if department.code in existing:
                continue
            directory.department_upsert(
                data=directory.DepartmentInput(
                    code=department.code,
                    name=department.name,
                    kind=department.kind,
                    parent_code=department.parent,
                    jurisdiction_codes=department.jurisdiction,
                    responsibilities=department.responsibilities,
                    accepts_dispatch=department.accepts_dispatch,
                    duty_phone=department.duty_phone,
                )
            )
        found = dict(Department.objects.filter(code__in=codes).values_list("code", "id"))
    missing = sorted(set(codes) - set(found))
    if missing:
        raise CommandError(f"找不到单位：{', '.join(missing)}（既不在数据库中，也不在演示城市中）。")
    return found


def create_history(messages: Sequence[Message], *, department_ids: dict[str, int], prefix: str) -> dict[int, str]:
    """Handled (closed) tickets for `messages`, in bulk, indexed for search alone: the ticket index is
    rebuilt from them, so earlier folds and the database's own tickets do not compete. Returns the new
    ticket ids with the (normalised) texts they came from."""
    now = clock.now()
    tickets = [
        Ticket(
            number=f"{prefix}{n:06d}",
            hotline_line="12345",
            channel=Channel.WEB,
            status=Status.CLOSED,
            appeal_type=AppealType.HELP,
            title=message.title,
            content=message.body,
            lead_department_id=department_ids[message.department_code],
            query_code="000000",
            created_at=now,
            updated_at=now,
            closed_at=now,
        )
        for n, message in enumerate(messages)
    ]
    created = Ticket.objects.bulk_create(tickets, batch_size=500)
    keys = {ticket.pk: message.text_key for ticket, message in zip(created, messages, strict=True)}
    backend = search.get_backend()
    backend.rebuild(search.DocType.TICKET, search_documents.documents(search.DocType.TICKET, keys), progress=_ignore)
    # The database backend samples word frequencies of the index and keeps them for minutes; a fold must not
    # rank with frequencies sampled from another fold's history (which holds this fold's messages).
    database_backend._stats = None
    return keys


def _ignore(_done: int) -> None:
    return None


# ---------------------------------------------------------------------------------------------------------
# metrics


def percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))]


@dataclass
class Outcome:
    truth: str
    predicted: str
    confidence: float
    milliseconds: float


@dataclass
class Report:
    labels: list[str]
    outcomes: list[Outcome] = field(default_factory=list)

    def per_class(self) -> dict[str, tuple[float, float, float, int]]:
        result = {}
        for label in self.labels:
            tp = sum(1 for o in self.outcomes if o.truth == label and o.predicted == label)
            predicted = sum(1 for o in self.outcomes if o.predicted == label)
            actual = sum(1 for o in self.outcomes if o.truth == label)
            precision = tp / predicted if predicted else 0.0
            recall = tp / actual if actual else 0.0
            f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
            result[label] = (precision, recall, f1, actual)
        return result

    def accuracy(self, outcomes: Sequence[Outcome] | None = None) -> float:
        chosen = self.outcomes if outcomes is None else outcomes
        return sum(1 for o in chosen if o.truth == o.predicted) / len(chosen) if chosen else 0.0

    def macro_f1(self) -> float:
        scores = [f1 for _, _, f1, support in self.per_class().values() if support]
        return sum(scores) / len(scores) if scores else 0.0

    def at_threshold(self, threshold: float) -> tuple[float, float]:
        """(share sent to manual dispatch, accuracy of the rest)."""
        automatic = [o for o in self.outcomes if o.confidence >= threshold]
        manual = 1 - len(automatic) / len(self.outcomes) if self.outcomes else 0.0
        return manual, self.accuracy(automatic)


def label_of(department_id: int | None, *, parents: Mapping[int, int | None], labels: Mapping[int, str]) -> str:
    """The label a recommended department stands for: its own, or the nearest ancestor's."""
    seen: set[int] = set()
    current = department_id
    while current is not None and current not in seen:
        if current in labels:
            return labels[current]
        seen.add(current)
        current = parents.get(current)
    return OTHER


# ---------------------------------------------------------------------------------------------------------


@dataclass
class FoldCheck:
    """What a fold used: kept so that tests (and the command itself) can prove the split clean."""

    history_keys: set[str]
    evaluated_keys: set[str]


class Leak(Exception):
    pass


def evaluate(
    *,
    messages: Sequence[Message],
    train: Sequence[Message] | None,
    k: int,
    seed: int,
    threshold: float,
    progress: Any = None,
) -> tuple[Report, list[FoldCheck], dict[str, Any]]:
    """Route every message of `messages` with a history that never holds it. Call inside a transaction
    that the caller rolls back."""
    codes = sorted({m.department_code for m in messages} | {m.department_code for m in train or ()})
    department_ids = ensure_departments(codes)
    code_labels: dict[str, str] = {}
    for message in (*messages, *(train or ())):
        code_labels.setdefault(message.department_code, message.label)
    labels_by_id = {department_ids[code]: label for code, label in code_labels.items()}
    parents = dict(Department.objects.values_list("id", "parent_id"))
    labels = sorted({m.label for m in messages}, key=lambda label: (-sum(m.label == label for m in messages), label))
    report = Report(labels=labels)
    checks: list[FoldCheck] = []
    info: dict[str, Any] = {"history_sizes": [], "temperatures": []}

    if train is not None:
        data_texts = {m.text_key for m in messages}
        history_rows = [m for m in train if m.text_key not in data_texts]
        info["train_dropped_as_duplicates"] = len(train) - len(history_rows)
        plan: list[tuple[list[Message], list[Message]]] = [(history_rows, list(messages))]
    else:
        parts = folds(messages, k=k, seed=seed)
        plan = []
        for part in parts:
            held = set(part)
            plan.append(([m for i, m in enumerate(messages) if i not in held], [messages[i] for i in part]))

    token = secrets.token_hex(3)
    for fold, (history, evaluated) in enumerate(plan):
        if not history or not evaluated:
            continue
        check = FoldCheck(history_keys={m.text_key for m in history}, evaluated_keys={m.text_key for m in evaluated})
        if check.history_keys & check.evaluated_keys:
            raise Leak(f"第 {fold + 1} 折：被评测的留言出现在历史工单中")
        checks.append(check)
        with transaction.atomic():
            clear_caches()
            ticket_keys = create_history(history, department_ids=department_ids, prefix=f"EV{token}-{fold}-")
            numbers = dict(Ticket.objects.filter(id__in=list(ticket_keys)).values_list("number", "id"))
            evaluated_texts = {m.text_key for m in evaluated}
            model = classifier.Model.fit(
                [f"{m.title}\n{m.body}" for m in history], [m.department_code for m in history]
            )
            info["history_sizes"].append(len(history))
            info["temperatures"].append(model.temperature)
            with classifier.override(model):
                for message in evaluated:
                    started = time.perf_counter()
                    recommendations = recommend(RoutingInput(title=message.title, content=message.body))
                    elapsed = (time.perf_counter() - started) * 1000
                    for recommendation in recommendations:
                        for reason in recommendation.reasons:
                            if reason.kind != "similar_tickets":
                                continue
                            for number in reason.ref.split(","):
                                cited = ticket_keys.get(numbers.get(number, -1))
                                if cited is None or cited in evaluated_texts:
                                    raise Leak(f"留言 {message.key} 的证据引用了历史之外的工单 {number}")
                    top = recommendations[0] if recommendations else None
                    report.outcomes.append(
                        Outcome(
                            truth=message.label,
                            predicted=label_of(
                                top.department_id if top else None, parents=parents, labels=labels_by_id
                            ),
                            confidence=top.confidence if top else 0.0,
                            milliseconds=elapsed,
                        )
                    )
                    if progress is not None:
                        progress()
            transaction.set_rollback(True)
    clear_caches()
    info["threshold"] = threshold
    return report, checks, info


class Command(BaseCommand):
    help = (
        "评测派单推荐：按一级标签映射到演示单位，以历史工单（--train 或 k 折交叉验证）推荐，"
        "报告准确率、宏平均 F1、转人工比例与耗时。"
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--data", type=Path, required=True, help="JSON Lines 留言文件（id、title、body、label）")
        parser.add_argument("--train", type=Path, help="作为历史工单的留言文件；不给则在 --data 上做 k 折交叉验证")
        parser.add_argument("--folds", type=int, default=5, help="交叉验证折数（默认 5）")
        parser.add_argument("--limit", type=int, help="只用 --data 的前 N 条有效记录")
        parser.add_argument("--seed", type=int, default=12345, help="分折的随机种子")
        parser.add_argument("--threshold", type=float, help="自动派单的置信度阈值（默认 ROUTING_AUTO_CONFIDENCE）")

    def handle(self, *args: Any, **options: Any) -> None:
        limit: int | None = options["limit"]
        if limit is not None and limit < 1:
            raise CommandError("--limit 必须是正整数。")
        if options["folds"] < 2:
            raise CommandError("--folds 至少为 2。")
        if search.backend_name() != DATABASE:
            raise CommandError("评测需要数据库检索后端（历史工单的索引随事务回滚）；请不要设置 ELASTICSEARCH_URL。")
        messages, skipped = read_messages(options["data"], limit=limit)
        if not messages:
            raise CommandError("文件中没有可用的记录（每行需要 title/body 与 label）。")
        train = None
        if options["train"] is not None:
            train, train_skipped = read_messages(options["train"])
            skipped += [(line, f"--train：{reason}") for line, reason in train_skipped]
            if not train:
                raise CommandError("--train 文件中没有可用的记录。")
        threshold = options["threshold"] if options["threshold"] is not None else settings.ROUTING_AUTO_CONFIDENCE

        started = time.monotonic()
        done = 0

        def tick() -> None:
            nonlocal done
            done += 1
            if done % 100 == 0:
                self.stderr.write(f"已评测 {done}/{len(messages)}")

        try:
            with transaction.atomic():
                report, checks, info = evaluate(
                    messages=messages,
                    train=train,
                    k=options["folds"],
                    seed=options["seed"],
                    threshold=threshold,
                    progress=tick,
                )
                transaction.set_rollback(True)
        except Leak as error:
            raise CommandError(f"评测中止：{error}") from error
        except ApplicationError as error:
            raise CommandError(f"评测中止：{error.message}") from error
        finally:
            clear_caches()

        latencies = [o.milliseconds for o in report.outcomes]
        manual, auto_accuracy = report.at_threshold(threshold)
        per_class = report.per_class()
        result: dict[str, Any] = {
            "data": str(options["data"]),
            "train": str(options["train"]) if options["train"] else None,
            "mode": "train_file" if train is not None else f"{options['folds']}-fold",
            "messages": len(report.outcomes),
            "skipped": len(skipped),
            "history_sizes": info["history_sizes"],
            "accuracy": round(report.accuracy(), 4),
            "macro_f1": round(report.macro_f1(), 4),
            "threshold": threshold,
            "manual_share": round(manual, 4),
            "auto_accuracy": round(auto_accuracy, 4),
            "p50_ms": round(statistics.median(latencies), 2) if latencies else 0.0,
            "p95_ms": round(percentile(latencies, 0.95), 2),
            "per_class": {
                label: {"precision": round(p, 4), "recall": round(r, 4), "f1": round(f, 4), "support": n}
                for label, (p, r, f, n) in per_class.items()
            },
            "by_threshold": {
                str(t): {"manual_share": round(m, 4), "auto_accuracy": round(a, 4)}
                for t in THRESHOLDS
                for m, a in [report.at_threshold(t)]
            },
            "leak_checked_folds": len(checks),
            "classifier_temperatures": info["temperatures"],
            "seconds": round(time.monotonic() - started, 1),
        }
        if "train_dropped_as_duplicates" in info:
            result["train_dropped_as_duplicates"] = info["train_dropped_as_duplicates"]
        self._print(report, result, skipped)

    def _print(self, report: Report, result: dict[str, Any], skipped: list[tuple[int, str]]) -> None:
        from knowledge_base.management.commands.evaluate_answers import table

        write = self.stdout.write
        write(
            f"派单推荐评测：{result['data']}，{result['messages']} 条留言（{result['mode']}），"
            f"跳过 {result['skipped']} 行；每折历史工单 {result['history_sizes']} 件。"
        )
        for line, reason in skipped[:20]:
            write(f"  跳过第 {line} 行：{reason}")
        write("")
        rows = [
            (
                label,
                LABEL_DEPARTMENTS.get(label, ""),
                v["support"],
                f"{v['precision']:.3f}",
                f"{v['recall']:.3f}",
                f"{v['f1']:.3f}",
            )
            for label, v in result["per_class"].items()
        ]
        write(table(["一级标签", "单位", "条数", "精确率", "召回率", "F1"], rows))
        write("")
        columns = [*report.labels, OTHER]
        counts = Counter((o.truth, o.predicted) for o in report.outcomes)
        matrix = [(truth, *(counts[(truth, predicted)] for predicted in columns)) for truth in report.labels]
        write("混淆矩阵（行：真实标签，列：推荐单位对应的标签）")
        write(table(["真实\\推荐", *(c[:4] for c in columns)], matrix))
        write("")
        write(
            f"准确率 {result['accuracy']:.4f}，宏平均 F1 {result['macro_f1']:.4f}；"
            f"置信度阈值 {result['threshold']}：转人工 {result['manual_share']:.1%}，"
            f"自动派单准确率 {result['auto_accuracy']:.4f}。"
        )
        write(
            "阈值对照："
            + "；".join(
                f"{t} 转人工 {v['manual_share']:.1%} 自动准确率 {v['auto_accuracy']:.3f}"
                for t, v in result["by_threshold"].items()
            )
        )
        write(
            f"recommend() 耗时：p50 {result['p50_ms']} ms，p95 {result['p95_ms']} ms；总用时 {result['seconds']} 秒。"
        )
        write(json.dumps(result, ensure_ascii=False))
