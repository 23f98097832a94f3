"""`manage.py import_articles FILE --owner-department CODE`: articles from JSON Lines or Excel, published at once.

Every row goes through `services.article_import`; a bad row is reported (row number, column, message) and the
others are kept. Rows are matched by (source, key), so running the same file again updates changed rows and
leaves the rest alone. Column names: `knowledge_base.importers.COLUMNS`.
"""

import json
import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from knowledge_base import importers, selectors
from knowledge_base.models import ArticleKind, Audience
from ticketing.models import User


def acting_user(username: str | None) -> User:
    if username:
        user = selectors.active_user(username=username)
        if user is None:
            raise CommandError(f"找不到启用的用户「{username}」。")
        return user
    user = selectors.first_administrator()
    if user is None:
        raise CommandError("没有可用的系统管理员账号；请用 --actor 指定，或先运行 seed_demo / createsuperuser。")
    return user


class Command(BaseCommand):
    help = "从 JSON Lines 或 Excel（.xlsx）文件导入知识库文章（直接发布），逐行报告错误；按（来源，编号）可重复导入。"

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path, help="JSON Lines（.jsonl）或 Excel（.xlsx）文件")
        parser.add_argument("--format", choices=["jsonl", "xlsx"], help="文件格式（默认按扩展名判断）")
        parser.add_argument("--owner-department", required=True, help="维护单位编码，例如 SY-12345")
        parser.add_argument("--source", help="来源名称（默认取文件名，不含扩展名）；同一来源内按编号去重")
        parser.add_argument(
            "--kind", choices=ArticleKind.values, default=ArticleKind.FAQ, help="行内没有类型时的类型（默认 faq）"
        )
        parser.add_argument(
            "--audience",
            choices=Audience.values,
            default=Audience.INTERNAL,
            help="行内没有公开范围时的公开范围（默认 internal，仅内部）",
        )
        parser.add_argument("--actor", help="以哪个用户的身份导入（须为系统管理员；默认最早的系统管理员）")
        parser.add_argument("--errors", type=Path, help="把错误报告另存为 JSON 文件")

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["file"]
        source = (options["source"] or path.stem).strip()
        if not source or len(source) > importers.SOURCE_MAX:
            raise CommandError(f"来源名称不能为空，也不能超过 {importers.SOURCE_MAX} 个字符。")
        department = selectors.department_by_code(code=options["owner_department"])
        if department is None:
            raise CommandError(f"找不到启用的单位「{options['owner_department']}」。")
        actor = acting_user(options["actor"])
        defaults = importers.Defaults(kind=options["kind"], audience=options["audience"])
        try:
            table = importers.read_table(path, importers.file_format(path, options["format"]))
            started = time.monotonic()
            progress = importers.Progress(total=len(table.rows), label="导入", stream=importers.raw_stream(self.stderr))
            report = importers.import_table(
                table,
                source=source,
                owner_department_id=department.id,
                actor=actor,
                defaults=defaults,
                progress=progress,
            )
        except importers.ImportFileError as error:
            raise CommandError(str(error)) from None
        elapsed = time.monotonic() - started

        self.stdout.write(
            f"{path.name}：来源「{source}」，维护单位 {department.name}（{department.code}），"
            f"默认类型 {ArticleKind(defaults.kind).label}，默认公开范围 {Audience(defaults.audience).label}。"
        )
        self.stdout.write(
            f"共 {report.rows} 行：新建 {report.created}，更新 {report.updated}，未变 {report.unchanged}，"
            f"出错 {report.failed_rows}。用时 {elapsed:.1f} 秒。"
        )
        if report.unused_columns:
            self.stdout.write(f"未使用的列（没有对应字段）：{'、'.join(report.unused_columns)}")
        if report.errors:
            self.stdout.write("错误报告（行号  列  说明）：")
            for row_error in report.errors:
                self.stdout.write(f"  第 {row_error.row} 行  {row_error.field or '—'}  {row_error.message}")
        if options["errors"] is not None:
            options["errors"].write_text(
                json.dumps(report.as_json(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
            )
            self.stdout.write(f"错误报告已写入 {options['errors']}")
        self.stdout.write(json.dumps(report.as_json(), ensure_ascii=False))
        if report.errors:
            raise CommandError(f"{report.failed_rows} 行未导入（见错误报告）；其余各行已导入。")
