"""`manage.py import_categories [FILE]`: load a two-level category tree.

Without FILE the project's own tree (`ticketing.defaults`) is loaded. FILE is JSON Lines, one row per line,
with `level1`/`level2` (the shape of ../shared/data/category_taxonomy.jsonl; `level3` and deeper are
ignored because tickets are classified on two levels) or `first`/`second`. The whole file is read and
checked before anything is written, so a bad line imports nothing.
"""

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from hotline.errors import ApplicationError
from hotline.jsonl import JsonLinesError, read_json_lines
from ticketing.defaults import category_pairs
from ticketing.directory import category_import

# Category.name is a CharField(max_length=64); checked per line so the error can name the line.
MAX_NAME_LENGTH = 64


def _name(row: dict[str, Any], keys: tuple[str, str], *, line: int) -> str | None:
    value = next((row[key] for key in keys if row.get(key) is not None), None)
    if value is None:
        return None
    if not isinstance(value, str):
        raise CommandError(f"第 {line} 行：分类名称必须是文本（{'/'.join(keys)}）。")
    value = value.strip()
    if len(value) > MAX_NAME_LENGTH:
        raise CommandError(f"第 {line} 行：分类名称超过 {MAX_NAME_LENGTH} 个字符：{value[:20]}…")
    return value or None


def read_pairs(path: Path) -> list[tuple[str, str | None]]:
    """(first level, second level) pairs from a JSON Lines file, in file order; raises CommandError."""
    pairs: list[tuple[str, str | None]] = []
    try:
        for number, row in read_json_lines(path):
            if isinstance(row, str):
                raise CommandError(
                    f'第 {number} 行{row}；每行应为 JSON 对象，例如 {{"level1": "城乡建设", "level2": "物业管理"}}。'
                )
            first = _name(row, ("level1", "first"), line=number)
            if first is None:
                raise CommandError(f"第 {number} 行缺少一级分类（level1 或 first）。")
            pairs.append((first, _name(row, ("level2", "second"), line=number)))
    except JsonLinesError as error:
        raise CommandError(str(error)) from None
    if not pairs:
        raise CommandError(f"文件 {path} 中没有分类。")
    return pairs


class Command(BaseCommand):
    help = "导入两级诉求分类。不指定文件时导入本项目的默认分类；文件为 JSON Lines（level1/level2 或 first/second）。"

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", nargs="?", type=Path, help="JSON Lines 文件；省略时导入默认分类")

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path | None = options["file"]
        pairs = read_pairs(path) if path is not None else list(category_pairs())
        try:
            result = category_import(pairs=pairs)
        except ApplicationError as error:
            raise CommandError(error.message) from None
        source = str(path) if path is not None else "默认分类"
        self.stdout.write(
            f"{source}：一级分类 {result.first_level_total} 个、二级分类 {result.second_level_total} 个；"
            f"本次新建一级分类 {result.first_level_created} 个、二级分类 {result.second_level_created} 个，"
            "已存在的保持不变。"
        )
