"""The demo knowledge base: the project's own articles for the demo city, kept as data in `articles.json`.

`manage.py seed_articles` (called by `seed_demo`) writes them through the real services: written by a member
of the owning department, submitted, and approved by its lead or an administrator; a few are left in review
or as drafts, and some have a later version, so every page has something to show.
"""

import json
from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

from knowledge_base.models import CONTENT_FIELDS, ArticleKind, Audience

DEMO_DIR = Path(__file__).resolve().parent
STATES = ("draft", "in_review", "published", "rejected")


@dataclass(frozen=True)
class DemoRevision:
    change_note: str
    changes: dict[str, str]
    state: str
    review_note: str = ""


@dataclass(frozen=True)
class DemoArticle:
    kind: str
    owner: str
    author: str
    reviewer: str
    audience: str
    category: tuple[str, str] | None
    tags: tuple[str, ...]
    content: dict[str, str]
    state: str = "published"
    valid_from: date | None = None
    valid_until: date | None = None
    revisions: tuple[DemoRevision, ...] = ()

    @property
    def title(self) -> str:
        return self.content["title"]


def _date(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


def _article(item: dict[str, Any]) -> DemoArticle:
    return DemoArticle(
        kind=item["kind"],
        owner=item["owner"],
        author=item["author"],
        reviewer=item["reviewer"],
        audience=item["audience"],
        category=(item["category"][0], item["category"][1]) if item.get("category") else None,
        tags=tuple(item.get("tags", ())),
        content=dict(item["content"]),
        state=item.get("state", "published"),
        valid_from=_date(item.get("valid_from")),
        valid_until=_date(item.get("valid_until")),
        revisions=tuple(
            DemoRevision(
                change_note=revision["change_note"],
                changes=dict(revision["changes"]),
                state=revision["state"],
                review_note=revision.get("review_note", ""),
            )
            for revision in item.get("revisions", ())
        ),
    )


@cache
def load_articles() -> tuple[DemoArticle, ...]:
    with (DEMO_DIR / "articles.json").open(encoding="utf-8") as handle:
        data = json.load(handle)
    return tuple(_article(item) for item in data["articles"])


def problems() -> list[str]:
    """What is wrong with the demo file, checked before anything is written."""
    found: list[str] = []
    titles: set[tuple[str, str]] = set()
    for number, article in enumerate(load_articles(), start=1):
        where = f"第 {number} 篇「{article.content.get('title', '')}」"
        if article.kind not in ArticleKind.values:
            found.append(f"{where}：类型 {article.kind} 无效")
        if article.audience not in Audience.values:
            found.append(f"{where}：公开范围 {article.audience} 无效")
        if article.state not in STATES[:3]:
            found.append(f"{where}：状态 {article.state} 无效")
        unknown = set(article.content) - set(CONTENT_FIELDS)
        for revision in article.revisions:
            unknown |= set(revision.changes) - set(CONTENT_FIELDS)
            if revision.state not in STATES:
                found.append(f"{where}：修订状态 {revision.state} 无效")
            if "title" in revision.changes:
                found.append(f"{where}：修订不能改标题（重复运行时靠标题识别文章）")
        if unknown:
            found.append(f"{where}：未知字段 {sorted(unknown)}")
        if article.revisions and article.state != "published":
            found.append(f"{where}：只有已发布的文章才能有修订")
        if (article.owner, article.title) in titles:
            found.append(f"{where}：同一单位下标题重复")
        titles.add((article.owner, article.title))
    return found
