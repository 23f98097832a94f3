"""What the public site's tests share: solving the arithmetic challenge as a citizen would, and a request."""

import re
from typing import Any

NUMERALS = {c: n for n, c in enumerate("零一二三四五六七八九")}
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64


def chinese_to_int(text: str) -> int:
    if text == "十":
        return 10
    if "十" in text:
        tens, _, ones = text.partition("十")
        return (NUMERALS[tens] if tens else 1) * 10 + (NUMERALS[ones] if ones else 0)
    return NUMERALS[text]


def solve(question: str) -> str:
    """「十二加七等于多少？」 -> "19"."""
    match = re.fullmatch(r"(.+?)(加|减)(.+?)等于多少？", question)
    assert match, question
    left, right = chinese_to_int(match[1]), chinese_to_int(match[3])
    return str(left + right if match[2] == "加" else left - right)


def request_fields(**overrides: Any) -> dict[str, Any]:
    """A citizen's request as the form and the API take it (without the challenge)."""
    return {
        "appeal_type": "complaint",
        "location": "幸福小区东门",
        "title": "小区夜间施工噪音扰民",
        "content": "幸福小区东门工地每天夜里十一点后还在施工，噪音很大，影响休息。",
        "name": "李四",
        "phone": "13900001111",
        "consent": "true",
        **overrides,
    }
