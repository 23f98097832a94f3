"""`manage.py seed_articles`: the demo knowledge base, written through the real review flow.

Needs the demo city and accounts (`seed_demo` calls this command after building them). An article whose
owning department already has one with the same title is skipped, so running it again adds only what is
missing.
"""

import logging
from collections import Counter
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from hotline.errors import ApplicationError
from knowledge_base import demo, selectors, services
from knowledge_base.services import ArticleContent
from ticketing.models import User


def _user(username: str) -> User:
    user = selectors.active_user(username=username)
    if user is None:
        raise CommandError(f"演示账号「{username}」不存在；请先运行 manage.py seed_demo。")
    return user


def _category_id(path: tuple[str, str] | None, categories: dict[str, list[Any]]) -> int | None:
    if path is None:
        return None
    found = categories.get("/".join(path), [])
    if len(found) != 1:
        raise CommandError(f"找不到诉求分类「{'/'.join(path)}」；请先运行 manage.py seed_demo。")
    return int(found[0].id)


def _publish(article_id: int, *, author: User, reviewer: User, state: str, note: str = "") -> None:
    if state == "draft":
        return
    services.article_submit(article_id=article_id, actor=author)
    if state == "published":
        services.article_approve(article_id=article_id, actor=reviewer, note=note)
    elif state == "rejected":
        services.article_reject(article_id=article_id, actor=reviewer, note=note or "请补充依据后再提交。")


def seed(item: demo.DemoArticle, *, categories: dict[str, list[Any]]) -> str | None:
    """Write one demo article and its revisions; its final state, or None if it was there already."""
    department = selectors.department_by_code(code=item.owner)
    if department is None:
        raise CommandError(f"演示单位「{item.owner}」不存在；请先运行 manage.py seed_demo。")
    if selectors.article_with_title(owner_department_id=department.id, title=item.title) is not None:
        return None
    author, reviewer = _user(item.author), _user(item.reviewer)
    content = ArticleContent(
        **item.content,
        audience=item.audience,
        category_id=_category_id(item.category, categories),
        tags=item.tags,
        valid_from=item.valid_from,
        valid_until=item.valid_until,
    )
    article = services.article_create(
        actor=author, kind=item.kind, owner_department_id=department.id, content=content, change_note="初稿"
    )
    _publish(article.id, author=author, reviewer=reviewer, state=item.state)
    state = item.state
    for revision in item.revisions:
        content = ArticleContent(**{**content.__dict__, **revision.changes})
        services.article_revise(article_id=article.id, actor=author, content=content, change_note=revision.change_note)
        _publish(article.id, author=author, reviewer=reviewer, state=revision.state, note=revision.review_note)
        state = f"published+{revision.state}" if revision.state != "published" else "published"
    return state


class Command(BaseCommand):
    help = "载入演示知识库文章（knowledge_base/demo/articles.json），经编写、提交、审核的真实流程；已有的跳过。"

    def handle(self, *args: Any, **options: Any) -> None:
        problems = demo.problems()
        if problems:
            raise CommandError("演示文章文件有误：\n" + "\n".join(problems))
        states: Counter[str] = Counter()
        skipped = 0
        categories = selectors.categories_by_name()
        # One log line per article written would bury the summary.
        logger = logging.getLogger(services.logger.name)
        level = logger.level
        logger.setLevel(max(level, logging.WARNING))
        try:
            with transaction.atomic():
                for item in demo.load_articles():
                    state = seed(item, categories=categories)
                    if state is None:
                        skipped += 1
                    else:
                        states[state] += 1
                expired = services.articles_expire()
        except ApplicationError as error:
            raise CommandError(f"演示文章写入失败：{error.message}") from error
        finally:
            logger.setLevel(level)
        labels = {
            "published": "已发布",
            "published+in_review": "已发布且新版本审核中",
            "published+draft": "已发布且有新草稿",
            "published+rejected": "已发布且新版本被退回",
            "in_review": "审核中",
            "draft": "草稿",
        }
        made = "，".join(f"{labels.get(state, state)} {count}" for state, count in sorted(states.items()))
        self.stdout.write(
            f"演示知识库文章：新建 {sum(states.values())} 篇（{made or '无'}），已有而跳过 {skipped} 篇，"
            f"到期转为已过期 {expired} 篇。"
        )
