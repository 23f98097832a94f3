"""Importing articles from JSON Lines and Excel (.xlsx) files: reading, column mapping, per-row errors.

Each row becomes one `services.article_import` call (its own savepoint; rows are committed in batches), so a
bad row is reported and skipped while every good row is kept, and importing the same file again changes
nothing: rows are matched by (source, key), and a row whose content equals what its article last published is
left alone.

Columns are matched by name, English or Chinese (`COLUMNS`); `../shared/data/replies.jsonl` maps as
id -> key, title -> title, body (the citizen's message) -> question, reply (the official reply) -> answer.
Phone numbers and ID numbers in any text are masked (`138****5678`) before anything is stored.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import IO, Any, cast

from django.db import transaction

from hotline.errors import ApplicationError
from hotline.jsonl import JsonLinesError, read_json_lines
from ticketing.masking import mask_id_number, mask_phone
from ticketing.models import Category, User

from . import selectors, services
from .models import CONTENT_FIELDS, ArticleKind, ArticleStatus, Audience
from .services import ArticleContent, ImportRow

# Article field -> the column names that feed it, first match wins. Matching ignores case and spaces.
COLUMNS: dict[str, tuple[str, ...]] = {
    "source_key": ("source_key", "key", "id", "编号", "留言编号"),
    "kind": ("kind", "类型"),
    "title": ("title", "标题", "留言主题"),
    "question": ("question", "body", "问题", "留言详情"),
    "answer": ("answer", "reply", "答复", "正文", "答复意见"),
    "conditions": ("conditions", "办理条件", "受理条件"),
    "materials": ("materials", "所需材料", "申请材料"),
    "steps": ("steps", "办理流程"),
    "fees": ("fees", "收费标准"),
    "time_limit": ("time_limit", "办理时限"),
    "legal_basis": ("legal_basis", "设定依据"),
    "service_location": ("service_location", "办理地点与方式", "办理地点"),
    "document_number": ("document_number", "文号"),
    "audience": ("audience", "公开范围"),
    "category": ("category", "诉求分类"),
    "tags": ("tags", "标签"),
    "valid_from": ("valid_from", "生效日期"),
    "valid_until": ("valid_until", "有效期至"),
}
# Columns the known source files carry that no article field takes; anything else unmatched is reported.
KNOWN_UNUSED = frozenset({"created_at", "replied_at", "label", "source", "留言时间", "答复时间", "一级标签"})
# The service reports errors by article field; categories are validated as category_id.
FIELD_ALIASES = {"category_id": "category"}

KIND_VALUES = {
    **{kind.value: kind.value for kind in ArticleKind},
    **{str(kind.label): kind.value for kind in ArticleKind},
}
AUDIENCE_VALUES = {
    **{audience.value: audience.value for audience in Audience},
    **{str(audience.label): audience.value for audience in Audience},
}
KEY_MAX = 64
COMMIT_EVERY = 200
SOURCE_MAX = 64
TAG_SPLIT = re.compile(r"[,，、;；|]")

# Mobile numbers, landlines with an area code, and 18-digit ID numbers, not inside longer digit runs.
# The placeholder the source data already uses for masked numbers (0000-00000000) is left as it is.
MOBILE = re.compile(r"(?<![0-9])(?:\+?86[- ]?)?1[3-9][0-9]{9}(?![0-9])")
LANDLINE = re.compile(r"(?<![0-9])0[1-9][0-9]{1,2}-[1-9][0-9]{6,7}(?![0-9])")
ID_NUMBER = re.compile(r"(?<![0-9])[1-9][0-9]{16}[0-9Xx](?![0-9])")


def mask_contacts(text: str) -> str:
    text = ID_NUMBER.sub(lambda m: mask_id_number(m.group()), text)
    text = MOBILE.sub(lambda m: mask_phone(m.group()), text)
    return LANDLINE.sub(lambda m: mask_phone(m.group()), text)


class ImportFileError(Exception):
    """The file as a whole cannot be imported (missing, unreadable, no usable columns)."""


@dataclass(frozen=True)
class RowError:
    row: int
    field: str
    message: str
    key: str = ""


@dataclass(frozen=True)
class Table:
    """A file's rows as (row number, {column: value}), or (row number, why the row is unreadable)."""

    path: Path
    columns: tuple[str, ...]
    rows: tuple[tuple[int, dict[str, Any] | str], ...]


@dataclass(frozen=True)
class Defaults:
    kind: str
    audience: str


@dataclass
class ImportReport:
    source: str
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[RowError] = field(default_factory=list)
    unused_columns: list[str] = field(default_factory=list)

    @property
    def failed_rows(self) -> int:
        return len({error.row for error in self.errors})

    def as_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "rows": self.rows,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "failed": self.failed_rows,
            "unused_columns": self.unused_columns,
            "errors": [asdict(error) for error in self.errors],
        }


# ---------------------------------------------------------------------------------------------------------
# reading


def file_format(path: Path, given: str | None) -> str:
    if given:
        return given
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    if suffix in (".xlsx", ".xlsm"):
        return "xlsx"
    raise ImportFileError(f"无法从扩展名判断文件格式：{path.name}（请用 --format jsonl 或 --format xlsx）")


def read_table(path: Path, fmt: str) -> Table:
    if fmt == "jsonl":
        return _read_jsonl(path)
    if fmt == "xlsx":
        return _read_xlsx(path)
    raise ImportFileError(f"不支持的格式：{fmt}")


def _read_jsonl(path: Path) -> Table:
    try:
        rows = tuple(read_json_lines(path))
    except JsonLinesError as error:
        raise ImportFileError(str(error)) from None
    columns: dict[str, None] = {}
    for _number, row in rows:
        if isinstance(row, dict):
            columns.update(dict.fromkeys(str(name) for name in row))
    return Table(path=path, columns=tuple(columns), rows=rows)


def _read_xlsx(path: Path) -> Table:
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    if not path.is_file():
        raise ImportFileError(f"找不到文件：{path}")
    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except (InvalidFileException, OSError, KeyError, ValueError) as error:
        raise ImportFileError(f"无法读取 Excel 文件 {path}：{error}") from None
    try:
        sheet = workbook.worksheets[0]
        header: list[str] | None = None
        rows: list[tuple[int, dict[str, Any] | str]] = []
        for number, values in enumerate(sheet.iter_rows(values_only=True), start=1):
            if all(value is None or (isinstance(value, str) and not value.strip()) for value in values):
                continue
            if header is None:
                header = [str(value).strip() if value is not None else "" for value in values]
                named = [name for name in header if name]
                if len(named) != len(set(named)):
                    raise ImportFileError(f"表头（第 {number} 行）有重复的列名。")
                continue
            rows.append((number, {name: value for name, value in zip(header, values, strict=False) if name}))
    finally:
        workbook.close()
    if header is None:
        raise ImportFileError(f"Excel 文件 {path} 的第一个工作表是空的。")
    return Table(path=path, columns=tuple(name for name in header if name), rows=tuple(rows))


# ---------------------------------------------------------------------------------------------------------
# mapping


def _normal(name: str) -> str:
    return re.sub(r"\s+", "", name).lower()


def column_mapping(columns: Iterable[str]) -> tuple[dict[str, str], list[str]]:
    """{article field: column} for the columns present, and the columns no field takes (to report)."""
    by_normal = {_normal(column): column for column in columns}
    mapping: dict[str, str] = {}
    for name, aliases in COLUMNS.items():
        found = next((by_normal[_normal(alias)] for alias in aliases if _normal(alias) in by_normal), None)
        if found is not None:
            mapping[name] = found
    used = set(mapping.values())
    unused = [column for column in columns if column not in used and _normal(column) not in KNOWN_UNUSED]
    return mapping, unused


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == datetime.min.time() else value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    return str(value).strip()


def _date(value: Any) -> date | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = str(value).strip()
    match = re.fullmatch(r"(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?", text)
    if match is None:
        raise ValueError(text)
    return date(*(int(part) for part in match.groups()))


def _tags(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    items = value if isinstance(value, list | tuple) else TAG_SPLIT.split(_text(value))
    return services.tags_from(_text(item) for item in items)


class RowParser:
    """Turns one row into an `ImportRow`, or the list of what is wrong with it."""

    def __init__(self, *, mapping: Mapping[str, str], defaults: Defaults) -> None:
        self.mapping = mapping
        self.defaults = defaults
        self._categories: dict[str, list[Category]] | None = None

    def column(self, name: str) -> str:
        name = FIELD_ALIASES.get(name, name)
        return self.mapping.get(name, name)

    def _category_id(self, value: Any) -> int | None:
        text = re.sub(r"\s*/\s*", "/", _text(value))
        if not text:
            return None
        if self._categories is None:
            self._categories = selectors.categories_by_name()
        found = self._categories.get(text, [])
        if len(found) > 1:
            raise ValueError(f"有多个名为「{text}」的分类，请写成「一级分类/二级分类」。")
        if not found:
            raise ValueError(f"找不到分类「{text}」。")
        return found[0].id

    def parse(self, number: int, raw: Mapping[str, Any]) -> ImportRow | list[RowError]:
        def get(name: str) -> Any:
            column = self.mapping.get(name)
            return raw.get(column) if column is not None else None

        errors: list[RowError] = []
        key = _text(get("source_key"))

        def fail(name: str, message: str) -> None:
            errors.append(RowError(row=number, field=self.column(name), message=message, key=key))

        if not key:
            fail("source_key", "缺少编号：重复导入时靠它找到同一篇文章。")
        elif len(key) > KEY_MAX:
            fail("source_key", f"编号不能超过 {KEY_MAX} 个字符。")
        kind_text = _text(get("kind"))
        kind = KIND_VALUES.get(kind_text, "") if kind_text else self.defaults.kind
        if not kind:
            fail("kind", f"类型「{kind_text}」无效（可用：{'、'.join(KIND_VALUES)}）。")
        audience_text = _text(get("audience"))
        audience = AUDIENCE_VALUES.get(audience_text, "") if audience_text else self.defaults.audience
        if not audience:
            fail("audience", f"公开范围「{audience_text}」无效（可用：{'、'.join(AUDIENCE_VALUES)}）。")
        category_id: int | None = None
        try:
            category_id = self._category_id(get("category"))
        except ValueError as error:
            fail("category", str(error))
        dates: dict[str, date | None] = {}
        for name in ("valid_from", "valid_until"):
            try:
                dates[name] = _date(get(name))
            except ValueError:
                fail(name, f"日期「{_text(get(name))}」无法识别，请写成 2026-01-31。")
        if errors:
            return errors
        texts = {name: mask_contacts(_text(get(name))) for name in CONTENT_FIELDS}
        content = ArticleContent(
            **texts,
            audience=audience,
            category_id=category_id,
            tags=_tags(get("tags")),
            valid_from=dates.get("valid_from"),
            valid_until=dates.get("valid_until"),
        )
        return ImportRow(source_key=key, kind=kind, content=content)

    def service_errors(self, number: int, key: str, error: ApplicationError) -> list[RowError]:
        by_field = error.extra.get("errors")
        if not isinstance(by_field, dict) or not by_field:
            return [RowError(row=number, field="", message=error.message, key=key)]
        return [
            RowError(row=number, field=self.column(name), message=str(message), key=key)
            for name, messages in by_field.items()
            for message in (messages if isinstance(messages, list) else [messages])
        ]


# ---------------------------------------------------------------------------------------------------------
# importing


def raw_stream(wrapper: object) -> IO[str]:
    """The stream under a management command's `self.stderr`: a progress bar redraws with "\\r" and no newline,
    which the command's OutputWrapper would add to every write."""
    return cast(IO[str], getattr(wrapper, "_out", wrapper))


class Progress:
    """A progress bar on a terminal; on anything else (a log, a pipe) a plain line every tenth of the way."""

    def __init__(self, *, total: int, label: str, stream: IO[str] | None = None) -> None:
        self.total = total
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.done = 0
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._last_tenth = 0

    def advance(self, count: int = 1) -> None:
        self.done += count
        if self.tty:
            width = 30
            filled = width * self.done // self.total if self.total else width
            percent = 100 * self.done // self.total if self.total else 100
            bar = "#" * filled + "-" * (width - filled)
            self.stream.write(f"\r{self.label} [{bar}] {self.done}/{self.total} {percent:3d}%")
            self.stream.flush()
            return
        tenth = 10 * self.done // self.total if self.total else 10
        if tenth > self._last_tenth or self.done == self.total:
            self._last_tenth = tenth
            self.stream.write(f"{self.label}：{self.done}/{self.total}（{100 * self.done // max(self.total, 1)}%）\n")
            self.stream.flush()

    def finish(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


def _unchanged(row: ImportRow, source: str) -> bool:
    found = selectors.imported_article(source=source, source_key=row.source_key)
    if found is None:
        return False
    article, version = found
    if article.kind != row.kind or version is None:
        return False
    # A withdrawn or expired article is not brought back by importing the same text again.
    if article.status not in (ArticleStatus.PUBLISHED, ArticleStatus.WITHDRAWN, ArticleStatus.EXPIRED):
        return False
    return bool(version.content == row.content.as_json())


def import_table(
    table: Table,
    *,
    source: str,
    owner_department_id: int,
    actor: User,
    defaults: Defaults,
    progress: Progress | None = None,
) -> ImportReport:
    mapping, unused = column_mapping(table.columns)
    if "title" not in mapping:
        raise ImportFileError(f"找不到标题列（可用列名：{'、'.join(COLUMNS['title'])}）。")
    if "source_key" not in mapping:
        raise ImportFileError(f"找不到编号列（可用列名：{'、'.join(COLUMNS['source_key'])}）。")
    report = ImportReport(source=source, unused_columns=unused)
    parser = RowParser(mapping=mapping, defaults=defaults)
    seen: dict[str, int] = {}
    # Rows are committed in batches: one commit (and one index update) per batch instead of per row. Each row
    # is still its own savepoint inside the service, so a refused row leaves the rest of its batch intact.
    for start in range(0, len(table.rows), COMMIT_EVERY):
        with transaction.atomic():
            for number, raw in table.rows[start : start + COMMIT_EVERY]:
                report.rows += 1
                report.errors.extend(
                    _import_one(
                        number,
                        raw,
                        parser=parser,
                        seen=seen,
                        report=report,
                        source=source,
                        owner_department_id=owner_department_id,
                        actor=actor,
                    )
                )
                if progress is not None:
                    progress.advance()
    if progress is not None:
        progress.finish()
    return report


def _import_one(
    number: int,
    raw: dict[str, Any] | str,
    *,
    parser: RowParser,
    seen: dict[str, int],
    report: ImportReport,
    source: str,
    owner_department_id: int,
    actor: User,
) -> Iterator[RowError]:
    if isinstance(raw, str):
        yield RowError(row=number, field="", message=raw)
        return
    parsed = parser.parse(number, raw)
    if isinstance(parsed, list):
        yield from parsed
        return
    if parsed.source_key in seen:
        message = f"编号「{parsed.source_key}」与第 {seen[parsed.source_key]} 行重复，本行未导入。"
        yield RowError(row=number, field=parser.column("source_key"), message=message, key=parsed.source_key)
        return
    seen[parsed.source_key] = number
    if _unchanged(parsed, source):
        report.unchanged += 1
        return
    try:
        _article, created = services.article_import(
            source=source, row=parsed, owner_department_id=owner_department_id, actor=actor
        )
    except ApplicationError as error:
        yield from parser.service_errors(number, parsed.source_key, error)
        return
    if created:
        report.created += 1
    else:
        report.updated += 1
