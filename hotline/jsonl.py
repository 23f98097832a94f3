"""Reading JSON Lines files (imports, seeds, evaluations): one object per line, every line accounted for."""

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any


class JsonLinesError(Exception):
    """The file as a whole cannot be read."""


def read_json_lines(path: Path) -> Iterator[tuple[int, dict[str, Any] | str]]:
    """(line number, object) for each non-empty line; in place of the object, a str saying why the line is
    not one. Callers decide whether a bad line stops the import or is reported and skipped."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise JsonLinesError(f"找不到文件：{path}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise JsonLinesError(f"无法读取文件 {path}：{error}") from None
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            yield number, f"不是有效的 JSON：{error.msg}（第 {error.colno} 列）"
            continue
        if not isinstance(row, dict):
            yield number, "不是 JSON 对象"
            continue
        yield number, row
