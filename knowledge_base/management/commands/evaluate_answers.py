"""`manage.py evaluate_answers --data FILE`: how well search finds the official reply to a citizen's message.

Each row of FILE (shaped like ../shared/data/replies.jsonl: id, title, body, reply) becomes an answer article:
an FAQ whose title (and question) is the message's title and whose answer is the official reply; the
message's body is not stored. Then every body is a query, and separately every title alone; a query is
answered when its own reply is among the hits. Reported: recall@1, recall@5 and MRR over the first 10 hits.

Everything happens in a transaction that is rolled back: a temporary department owns the articles (the
searches are limited to it, so articles already in the database do not compete), a temporary administrator
imports them, and the search index is brought up to date inside the transaction (`search.sync()`) before
querying. The database index rolls back with the rest; an external index (Elasticsearch) is told afterwards
that these documents are gone. The last line of the output is a JSON object.
"""

from __future__ import annotations

import json
import secrets
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from hotline.errors import ApplicationError
from hotline.jsonl import JsonLinesError, read_json_lines
from knowledge_base import importers, search, services
from knowledge_base.models import ArticleKind, Audience
from knowledge_base.search.backends import DATABASE
from knowledge_base.services import ArticleContent, ImportRow
from ticketing import directory
from ticketing.models import DepartmentKind, Role

TOP_K = 10
REFRESH_WAIT_SECONDS = 30
TITLE_MAX = 200


@dataclass(frozen=True)
class Case:
    line: int
    key: str
    title: str
    body: str
    reply: str


@dataclass
class Scores:
    """Ranks of the right answer (None: not in the first TOP_K hits)."""

    ranks: list[int | None]

    def recall_at(self, k: int) -> float:
        return _ratio(sum(1 for rank in self.ranks if rank is not None and rank <= k), len(self.ranks))

    def mrr(self) -> float:
        return _ratio(sum(1 / rank for rank in self.ranks if rank is not None), len(self.ranks))


def _ratio(part: float, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def read_cases(path: Path, limit: int | None) -> tuple[list[Case], list[tuple[int, str]]]:
    cases: list[Case] = []
    skipped: list[tuple[int, str]] = []
    try:
        rows = read_json_lines(path)
        for number, row in rows:
            if limit is not None and len(cases) >= limit:
                break
            if isinstance(row, str):
                skipped.append((number, row))
                continue
            values = {name: str(row.get(name) or "").strip() for name in ("id", "title", "body", "reply")}
            missing = [name for name, value in values.items() if not value]
            if missing:
                skipped.append((number, f"缺少 {', '.join(missing)}"))
                continue
            if len(values["title"]) > TITLE_MAX:
                skipped.append((number, f"标题超过 {TITLE_MAX} 个字符"))
                continue
            cases.append(
                Case(line=number, key=values["id"], title=values["title"], body=values["body"], reply=values["reply"])
            )
    except JsonLinesError as error:
        raise CommandError(str(error)) from None
    return cases, skipped


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def table(headers: list[str], rows: list[tuple[Any, ...]]) -> str:
    cells = [headers, *[[str(cell) for cell in row] for row in rows]]
    widths = [max(_width(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "  ".join(
            " " * (widths[i] - _width(cell)) + cell if i else cell + " " * (widths[i] - _width(cell))
            for i, cell in enumerate(row)
        )
        for row in cells
    ]
    return "\n".join([lines[0], "  ".join("-" * w for w in widths), *lines[1:]])


def _rank(hits: list[search.Hit], article_id: int) -> int | None:
    return next((position for position, hit in enumerate(hits, start=1) if hit.doc_id == article_id), None)


class Command(BaseCommand):
    help = (
        "评测答复检索：把每条官方答复作为答复文章（不存留言原文），"
        "分别用留言正文和标题检索，报告 recall@1、recall@5 与 MRR。"
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--data",
            type=Path,
            required=True,
            help="JSON Lines 文件（id、title、body、reply），如 ../shared/data/replies.jsonl",
        )
        parser.add_argument("--limit", type=int, help="只用前 N 条有效记录")

    def handle(self, *args: Any, **options: Any) -> None:
        limit: int | None = options["limit"]
        if limit is not None and limit < 1:
            raise CommandError("--limit 必须是正整数。")
        cases, skipped = read_cases(options["data"], limit)
        if not cases:
            raise CommandError("文件中没有可用的记录（每行需要 id、title、body、reply）。")

        started = time.monotonic()
        article_ids: list[int] = []
        try:
            with transaction.atomic():
                department_id, actor = self._workspace()
                source = f"evaluate-{secrets.token_hex(4)}"
                progress = importers.Progress(
                    total=len(cases), label="建立答复文章", stream=importers.raw_stream(self.stderr)
                )
                for case in cases:
                    article, _created = services.article_import(
                        source=source,
                        row=ImportRow(
                            source_key=case.key[: importers.KEY_MAX],
                            kind=ArticleKind.FAQ,
                            content=ArticleContent(
                                title=case.title,
                                question=case.title,
                                answer=importers.mask_contacts(case.reply),
                                audience=Audience.INTERNAL,
                            ),
                        ),
                        owner_department_id=department_id,
                        actor=actor,
                    )
                    article_ids.append(article.id)
                    progress.advance()
                progress.finish()
                search.sync()
                self._wait_until_searchable(cases[-1], article_ids[-1], department_id)
                indexed_at = time.monotonic()

                filters = search.SearchFilters(department_id=department_id)
                body_ranks: list[int | None] = []
                title_ranks: list[int | None] = []
                progress = importers.Progress(total=len(cases), label="检索", stream=importers.raw_stream(self.stderr))
                for case, article_id in zip(cases, article_ids, strict=True):
                    body_hits = search.search(case.body, doc_type="article", filters=filters, limit=TOP_K)
                    title_hits = search.search(case.title, doc_type="article", filters=filters, limit=TOP_K)
                    body_ranks.append(_rank(body_hits, article_id))
                    title_ranks.append(_rank(title_hits, article_id))
                    progress.advance()
                progress.finish()
                searched_at = time.monotonic()
                transaction.set_rollback(True)
        except ApplicationError as error:
            raise CommandError(f"评测中止：{error.message}") from error
        finally:
            self._forget(article_ids)

        body, title = Scores(body_ranks), Scores(title_ranks)
        result = {
            "data": str(options["data"]),
            "rows": len(cases),
            "skipped": len(skipped),
            "backend": search.backend_name(),
            "k": TOP_K,
            "recall_at_1": body.recall_at(1),
            "recall_at_5": body.recall_at(5),
            "mrr": body.mrr(),
            "title_recall_at_1": title.recall_at(1),
            "title_recall_at_5": title.recall_at(5),
            "title_mrr": title.mrr(),
            "index_seconds": round(indexed_at - started, 1),
            "search_seconds": round(searched_at - indexed_at, 1),
        }
        self._report(result, skipped)

    def _workspace(self) -> tuple[int, Any]:
        """A department and an administrator that exist only inside the evaluation's transaction."""
        token = secrets.token_hex(4)
        department = directory.department_upsert(
            data=directory.DepartmentInput(
                code=f"EVAL-{token}",
                name="答复检索评测（临时）",
                kind=DepartmentKind.HOTLINE_CENTRE,
                accepts_dispatch=False,
            )
        )
        actor = directory.user_upsert(
            username=f"evaluate-answers-{token}",
            password=secrets.token_urlsafe(24),
            role=Role.ADMINISTRATOR,
            full_name="答复检索评测（临时）",
        )
        return department.id, actor

    def _wait_until_searchable(self, case: Case, article_id: int, department_id: int) -> None:
        """Elasticsearch shows what was indexed after its next refresh (1 s by default); the database at once.
        Documents become visible together at a refresh, so the last one found means all are."""
        if search.backend_name() == DATABASE:
            return
        filters = search.SearchFilters(department_id=department_id)
        deadline = time.monotonic() + REFRESH_WAIT_SECONDS
        while time.monotonic() < deadline:
            hits = search.search(case.title, doc_type="article", filters=filters, limit=TOP_K)
            if _rank(hits, article_id) is not None:
                return
            time.sleep(0.5)
        raise CommandError(f"索引在 {REFRESH_WAIT_SECONDS} 秒内没有显示新建的文章，评测中止。")

    def _forget(self, article_ids: list[int]) -> None:
        """After the rollback, have an index outside the database drop what it was sent. Updates read the
        documents' current state, so an id that a new article has taken meanwhile is indexed, not dropped."""
        if not article_ids or search.backend_name() == DATABASE:
            return  # the database's index rolled back with everything else
        with transaction.atomic():
            for article_id in article_ids:
                search.index_soon("article", article_id)
        search.sync()

    def _report(self, result: dict[str, Any], skipped: list[tuple[int, str]]) -> None:
        self.stdout.write(
            f"答复检索评测：{result['data']}，{result['rows']} 条答复作为文章（不含留言原文），"
            f"跳过 {result['skipped']} 行；检索后端 {result['backend']}，取前 {result['k']} 条。"
        )
        for line, reason in skipped[:20]:
            self.stdout.write(f"  跳过第 {line} 行：{reason}")
        rows = [
            (label, result["rows"], *(f"{result[prefix + name]:.4f}" for name in ("recall_at_1", "recall_at_5", "mrr")))
            for label, prefix in (("留言正文", ""), ("仅用标题", "title_"))
        ]
        self.stdout.write(table(["查询", "条数", "recall@1", "recall@5", f"MRR@{result['k']}"], rows))
        self.stdout.write(f"用时：建立文章与索引 {result['index_seconds']} 秒，检索 {result['search_seconds']} 秒。")
        self.stdout.write(json.dumps(result, ensure_ascii=False))
