"""What changed between two versions of an article: the field names, and a character diff for a page."""

from __future__ import annotations

from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Any

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe


def changed_fields(before: dict[str, Any] | None, after: dict[str, Any]) -> list[str]:
    """Fields that differ from the version before (for the first version: every filled one)."""
    if before is None:
        return [name for name, value in after.items() if value not in ("", None, [])]
    return [name for name in after if before.get(name) != after.get(name)]


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return "、".join(str(item) for item in value)
    return str(value)


def inline_diff(before: Any, after: Any) -> SafeString:
    """HTML with removed text in <del> and added text in <ins>; compared character by character, since
    Chinese has no spaces to split words on. Every piece of text is escaped."""
    old, new = _text(before), _text(after)
    parts: list[str] = []
    for tag, i1, i2, j1, j2 in SequenceMatcher(None, old, new, autojunk=False).get_opcodes():
        if tag == "equal":
            parts.append(escape(old[i1:i2]))
            continue
        if i2 > i1:
            parts.append(f"<del>{escape(old[i1:i2])}</del>")
        if j2 > j1:
            parts.append(f"<ins>{escape(new[j1:j2])}</ins>")
    return mark_safe("".join(parts))  # noqa: S308 - every piece above is escaped


@dataclass(frozen=True)
class FieldChange:
    name: str
    label: str
    diff: SafeString


def field_changes(before: dict[str, Any] | None, after: dict[str, Any], labels: dict[str, str]) -> list[FieldChange]:
    return [
        FieldChange(
            name=name,
            label=labels.get(name, name),
            diff=inline_diff(before.get(name) if before else "", after.get(name)),
        )
        for name in changed_fields(before, after)
    ]
