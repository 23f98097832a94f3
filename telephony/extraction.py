"""What a caller said, turned into ticket form values (智能填单) and emergency words. Pure functions, no database.

The input is Vosk's Mandarin transcript: Chinese characters, usually split into words or single characters by
spaces, no punctuation, numbers spoken as Chinese numerals (一/幺, 二/两, … 零/洞), now and then Arabic digits.
Matching works on the compact text (whitespace removed), so "幺 三 八" and "幺三八" read the same.

Every result carries its evidence (the words that matched), so the agent screen can show why a field was
filled. The vocabularies are module-level tables, one per question:

- `PHONE_CUES`: words that, said just before a number, make it the caller's contact number;
- `REGION_SUFFIXES`, `ALIAS_FOLLOWERS`: how short names of regions ("和平" for 和平区) are derived and when one
  counts as a place (see `find_places`);
- `ADDRESS_SUFFIXES`, `ADDRESS_UNITS`, `ADDRESS_STOP_WORDS`: address snippets ("中华路12号", "幸福小区3号楼");
- `APPEAL_CUES`: cue words per appeal type (glossary: inquiry, help, complaint, report, suggestion, praise);
- `URGENT_CUES`: words that make a request urgent; any emergency makes it critical;
- `EMERGENCIES`: words per emergency kind, with where to transfer the call (110/119/120/122, 国办函〔2025〕66号);
- `NEGATORS`: words right before a cue that cancel it ("没有人受伤", "不是投诉").

A cue may also carry its own exceptions: words right before it (`not_before`: 轮胎 for 漏气) or right after it
(`not_after`: 隐患 for 火灾) that mean something else.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ticketing.masking import mask_phone

# ---------------------------------------------------------------------------------------------------------
# vocabularies


@dataclass(frozen=True, slots=True)
class Cue:
    word: str
    weight: int = 1
    not_before: tuple[str, ...] = ()
    not_after: tuple[str, ...] = ()


# Said right before a cue, these cancel it: negation ("没有人受伤") and what might happen, not what does
# ("万一着火", "担心起火": a hazard to report, not an emergency to transfer). Any of them right before counts.
NEGATORS: tuple[str, ...] = (
    "没有人",
    "没人",
    "没有",
    "没",
    "不是",
    "不会",
    "不想",
    "不用",
    "不",
    "别",
    "无",
    "未",
    "防止",
    "预防",
    "以防",
    "以免",
    "万一",
    "担心",
    "怕",
    "容易",
)

# Spoken digits. 幺 is 1 and 洞 is 0 as read out on the phone; 两 is 2 in "幺三两…" too.
DIGITS: dict[str, str] = {
    **{str(d): str(d) for d in range(10)},
    **{chr(0xFF10 + d): str(d) for d in range(10)},  # full-width ０-９
    "零": "0",
    "〇": "0",
    "洞": "0",
    "一": "1",
    "幺": "1",
    "二": "2",
    "两": "2",
    "三": "3",
    "四": "4",
    "五": "5",
    "六": "6",
    "七": "7",
    "八": "8",
    "九": "9",
}
# What may stand between the digits of one number ("零二四杠…", "024-…").
DIGIT_SEPARATORS = "-－—杠"

# Said within `PHONE_CUE_WINDOW` characters before a number: the number is a phone number given as contact,
# and an 7-8 digit number without area code counts as a local landline.
PHONE_CUES: tuple[str, ...] = (
    "电话",
    "手机",
    "号码",
    "联系方式",
    "联系我",
    "座机",
    "固话",
    "打给",
    "回电",
    "回个电话",
    "拨打",
)
PHONE_CUE_WINDOW = 10
# A mobile number run straight into what follows it ("…五六七八 三号楼") is cut at 11 digits when the rest
# is this short and followed by one of `ADDRESS_UNITS`.
PHONE_TRAILING_DIGITS = 4

# Removed from the end of a region's name to get the short name people say ("沈北新区" -> "沈北").
REGION_SUFFIXES: tuple[str, ...] = (
    "特别行政区",
    "自治区",
    "自治州",
    "自治县",
    "街道",
    "社区",
    "新区",
    "地区",
    "省",
    "市",
    "区",
    "县",
    "旗",
    "镇",
    "乡",
    "村",
)
# A short name counts only when followed by one of these, or when it touches another place that counts
# ("沈阳和平区", "和平区南京街"): "和平" alone is too common a word ("和平年代"), and short names made of
# numerals only ("五三" of 五三街道) are never used, since phone numbers are read the same way.
ALIAS_FOLLOWERS: tuple[str, ...] = (
    "这边",
    "那边",
    "这块",
    "那块",
    "这片",
    "那片",
    "这里",
    "那里",
    "这儿",
    "那儿",
    "附近",
    "一带",
    "周边",
    "地区",
    "辖区",
    "片区",
    "境内",
)

# The last word of a place in an address. Schools, hospitals, shops are left out: "上小学", "去医院", "希望
# 市场监管部门…" name no place often enough to fill the form with.
ADDRESS_SUFFIXES: tuple[str, ...] = (
    "小区",
    "花园",
    "家园",
    "公寓",
    "大厦",
    "广场",
    "商场",
    "公园",
    "新村",
    "街道",
    "社区",
    "胡同",
    "大街",
    "大道",
    "大路",
    "路",
    "街",
    "巷",
    "村",
)
# Roads may have a one-character name when a house number follows ("中街5号"); other places need two, and so
# does a place that continues an address ("中华路12号幸福小区").
ADDRESS_ROADS = frozenset({"胡同", "大街", "大道", "大路", "路", "街", "巷"})
# Words that end like a place and are none ("夜班公交线路", "过马路", "逛街", "在农村").
ADDRESS_NOT_PLACES: tuple[str, ...] = (
    "线路",
    "道路",
    "马路",
    "公路",
    "铁路",
    "电路",
    "思路",
    "出路",
    "走路",
    "上路",
    "逛街",
    "上街",
    "农村",
    "乡村",
)
ADDRESS_UNITS: tuple[str, ...] = ("号楼", "号院", "单元", "号", "栋", "幢", "层", "楼", "室", "户")
# Where an address cannot start: the words before it ("我家住在幸福小区" -> "幸福小区").
ADDRESS_STOP_WORDS: tuple[str, ...] = (
    "这边",
    "那边",
    "旁边",
    "对面",
    "门口",
    "附近",
    "楼下",
    "楼上",
    "时候",
    "那个",
    "这个",
    "就是",
    "位于",
    "地址",
    "咱们",
    "我们",
    "投诉",
    "举报",
    "反映",
    "咨询",
    "请问",
    "希望",
    "感谢",
    "能不能",
    "或者",
    "老旧",
    "整个",
    "一个",
    "有个",
    "有",
    "在",
    "住",
    "到",
    "去",
    "过",
    "是",
    "的",
    "了",
    "说",
    "请",
    "我",
    "你",
    "他",
    "她",
    "们",
    "从",
    "给",
    "跟",
    "对",
    "把",
    "被",
    "让",
    "往",
    "离",
    "找",
    "那",
    "这",
)
ADDRESS_MAX_NAME = 8
ADDRESS_MAX_SNIPPETS = 3

# Cue words per appeal type; weight 2 for words that name the type, 1 for hints. The highest total wins;
# ties go to the first type in `APPEAL_PRECEDENCE`. "怎么投诉" asks how to complain: an inquiry, and being
# longer it wins over the "投诉" inside it. An emergency heard counts as a request for help
# (`EMERGENCY_HELP_WEIGHT` per kind).
APPEAL_CUES: dict[str, tuple[str | Cue, ...]] = {
    "inquiry": (
        Cue("咨询", 2),
        Cue("怎么办理", 2),
        Cue("如何办理", 2),
        Cue("在哪里办", 2),
        Cue("在哪办", 2),
        Cue("需要什么材料", 2),
        Cue("怎么投诉", 2),
        Cue("怎么举报", 2),
        "问一下",
        "请问",
        "想问",
        "怎么办",
        "怎么查询",
        "什么材料",
        "哪些材料",
        "需要准备",
        "申请条件",
        "流程",
        "能不能办",
    ),
    "help": (
        Cue("求助", 2),
        Cue("帮帮", 2),
        Cue("救救", 2),
        "帮忙",
        "帮一下",
        "帮我",
        "派人",
        "没办法了",
    ),
    "complaint": (
        Cue("投诉", 2),
        Cue("扰民", 2),
        Cue("不作为", 2),
        Cue("乱收费", 2),
        Cue("推诿", 2),
        Cue("没人管", 2),
        Cue("态度恶劣", 2),
        "态度差",
        "不耐烦",
        "冷嘲热讽",
        "推脱",
        "拒载",
        "绕路",
        "欺诈",
        "强制",
        "不管",
        "没人来",
        "一直没",
        "不给",
        "噪音",
        "很吵",
        "太吵",
        "睡不好",
        "油烟",
        "刺鼻",
        "臭味",
        "污染",
        "乱停",
        "占道",
        "拖欠",
        "反映",
    ),
    "report": (
        Cue("举报", 2),
        Cue("违建", 2),
        Cue("违章建筑", 2),
        Cue("私搭乱建", 2),
        Cue("偷排", 2),
        Cue("无证经营", 2),
        Cue("传销", 2),
        Cue("赌博", 2),
        "违法",
        "违规",
        "非法",
        "假冒",
        "造假",
        "黑车",
        "搭建",
        "过期",
        "证照",
        "不要透露",
    ),
    "suggestion": (
        Cue("建议", 2),
        Cue("提个意见", 2),
        "希望",
        "增设",
        "增开",
    ),
    "praise": (
        Cue("表扬", 2),
        Cue("点赞", 2),
        Cue("锦旗", 2),
        Cue("好人好事", 2),
        Cue("非常感谢", 2),
        Cue("特别感谢", 2),
        "感谢",
        "很负责",
    ),
}
EMERGENCY_HELP_WEIGHT = 2
APPEAL_PRECEDENCE: tuple[str, ...] = ("report", "complaint", "help", "suggestion", "praise", "inquiry")

# Any of these makes the request urgent (Urgency.URGENT): water, power, gas or heating cut, things that
# cannot wait. Everyday "马上" is on the list on purpose: callers who say it want it fast.
URGENT_CUES: dict[str, tuple[str | Cue, ...]] = {
    "urgent": (
        "紧急",
        "很急",
        "特别急",
        "着急",
        "急需",
        "马上",
        "立刻",
        "立即",
        "赶紧",
        "停水",
        "停电",
        "停气",
        "停暖",
        "断水",
        "断电",
        "没水",
        "没电",
        "没有水",
        "没有电",
        "没暖气",
        "不供暖",
        "暖气不热",
        "爆管",
        "管爆",
        "水管爆",
        "爆裂",
        "跑水",
        "漏水",
        "井盖",
        "危险",
        "电梯故障",
        Cue("燃气", not_after=("费", "公司", "卡", "表", "缴费", "交费", "开户", "过户", "办理")),
    ),
}


@dataclass(frozen=True, slots=True)
class EmergencyKind:
    label: str
    targets: tuple[str, ...]  # ExternalTarget values: where the call goes at once
    cues: tuple[str | Cue, ...]


# Emergencies: danger to life or property goes at once to 110/119/120/122 (国办函〔2025〕66号). Each word
# belongs to one kind, so an alert's words tell its kind again (alerts are raised once per call and kind).
EMERGENCIES: dict[str, EmergencyKind] = {
    "fire": EmergencyKind(
        "火情",
        ("119",),
        (
            "着火",
            "起火",
            "失火",
            Cue("火灾", not_after=("隐患", "风险", "演练", "保险", "报警器", "自动报警")),
            Cue("冒烟", not_before=("烟囱", "烟筒", "排气筒", "油烟机")),
            "冒黑烟",
            "浓烟",
            "烧起来",
            "火很大",
            Cue("爆炸", not_after=("性",)),
        ),
    ),
    "gas_leak": EmergencyKind(
        "燃气泄漏",
        ("119",),
        (
            "燃气泄漏",
            "煤气泄漏",
            "天然气泄漏",
            "液化气泄漏",
            Cue("漏气", not_before=("轮胎", "车胎", "胎", "暖气", "气球", "自行车")),
            "煤气味",
            "燃气味",
            "天然气味",
            "液化气味",
        ),
    ),
    "injury": EmergencyKind(
        "有人受伤",
        ("120",),
        ("受伤", "流血", "出血", "骨折", "摔伤", "烧伤", "烫伤", "砸伤"),
    ),
    "medical": EmergencyKind(
        "急症",
        ("120",),
        ("昏迷", "晕倒", "昏倒", "休克", "不省人事", "没有呼吸", "没呼吸", "心脏骤停", "抽搐", "中毒", "一氧化碳"),
    ),
    "electric_shock": EmergencyKind("触电", ("120",), ("触电", "被电击", "电到人")),
    "drowning": EmergencyKind(
        "溺水",
        ("110", "119", "120"),
        ("溺水", "落水", "掉水里", "掉河里", "掉进河", "掉进水"),
    ),
    "violence": EmergencyKind(
        "暴力伤害",
        ("110",),
        (
            "打架",
            "斗殴",
            "持刀",
            "拿刀",
            "拿着刀",
            "动刀",
            "持械",
            "砍人",
            "捅人",
            "打人",
            "抢劫",
            "行凶",
            "杀人",
            "绑架",
        ),
    ),
    "self_harm": EmergencyKind("轻生", ("110", "120"), ("跳楼", "跳河", "自杀", "轻生", "不想活")),
    "traffic": EmergencyKind("交通事故", ("122", "120"), ("车祸", "撞人", "撞车", "交通事故", "被车撞")),
    "trapped": EmergencyKind("有人被困", ("119",), ("困在电梯", "电梯困人", Cue("被困", not_after=("扰",)), "困住了")),
    "collapse": EmergencyKind("坍塌", ("119",), ("倒塌", "坍塌", "塌了", "塌方")),
}


# ---------------------------------------------------------------------------------------------------------
# results


@dataclass(frozen=True, slots=True)
class Hit:
    value: str
    word: str
    start: int
    weight: int = 1

    @property
    def end(self) -> int:
        return self.start + len(self.word)


@dataclass(frozen=True, slots=True)
class PhoneNumber:
    number: str  # ASCII digits; a landline with its area code as "024-12345678"
    kind: str  # "mobile" or "landline"
    contact: bool  # said right after a phone cue ("我的电话是…")
    start: int = 0  # in the compact text
    end: int = 0

    def as_dict(self) -> dict[str, Any]:
        # Stored and shown masked: the full number is in the transcript, never in the evidence.
        return {"masked": mask_phone(self.number), "kind": self.kind, "contact": self.contact}


@dataclass(frozen=True, slots=True)
class RegionName:
    """A region the transcript may name: the caller of `find_places` reads them from the region tree."""

    id: int
    name: str
    level: int
    parent_id: int | None = None


@dataclass(frozen=True, slots=True)
class PlaceMatch:
    region_id: int
    name: str
    heard: str  # the words that matched: the full name or a short name
    level: int
    start: int
    alias: bool

    def as_dict(self) -> dict[str, Any]:
        return {"region_id": self.region_id, "name": self.name, "heard": self.heard, "alias": self.alias}


@dataclass(frozen=True, slots=True)
class Choice:
    value: str
    words: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"value": self.value, "words": list(self.words)}


@dataclass(frozen=True, slots=True)
class Emergency:
    kind: str
    label: str
    targets: tuple[str, ...]
    words: tuple[str, ...]
    start: int  # where the first word was heard, in the compact text

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "label": self.label, "targets": list(self.targets), "words": list(self.words)}


@dataclass(frozen=True, slots=True)
class Extraction:
    phones: tuple[PhoneNumber, ...] = ()
    places: tuple[PlaceMatch, ...] = ()
    region: PlaceMatch | None = None
    addresses: tuple[str, ...] = ()
    appeal_type: Choice | None = None
    urgency: Choice = field(default_factory=lambda: Choice("normal", ()))
    emergencies: tuple[Emergency, ...] = ()

    @property
    def contact_phone(self) -> str:
        """The number the caller gave as contact, else ""."""
        return next((phone.number for phone in self.phones if phone.contact), "")

    @property
    def location_text(self) -> str:
        return "；".join(self.addresses)

    def as_dict(self) -> dict[str, Any]:
        """Machine values with their evidence, JSON-ready; phone numbers masked."""
        return {
            "phones": [phone.as_dict() for phone in self.phones],
            "places": [place.as_dict() for place in self.places],
            "region": self.region.as_dict() if self.region else None,
            "addresses": list(self.addresses),
            "appeal_type": self.appeal_type.as_dict() if self.appeal_type else None,
            "urgency": self.urgency.as_dict(),
            "emergencies": [emergency.as_dict() for emergency in self.emergencies],
        }


# ---------------------------------------------------------------------------------------------------------
# shared steps


def compact(text: str) -> str:
    return "".join(text.split())


_CHINESE = "\u3000-\u303f\u4e00-\u9fff\uff00-\uffef"  # CJK punctuation, ideographs, full-width forms
_SPACE_IN_CHINESE = re.compile(rf"(?<=[{_CHINESE}])\s+(?=[{_CHINESE}])")


def readable(text: str) -> str:
    """Vosk's Mandarin output as people write it: no spaces between Chinese characters ("我 要 投诉" ->
    "我要投诉"). Spaces elsewhere stay, so Korean or English words keep theirs."""
    return _SPACE_IN_CHINESE.sub("", " ".join(text.split()))


def _cue(item: str | Cue) -> Cue:
    return item if isinstance(item, Cue) else Cue(item)


def _cancelled(text: str, start: int, end: int, cue: Cue) -> bool:
    before, after = text[:start], text[end:]
    return before.endswith(NEGATORS + cue.not_before) or (bool(cue.not_after) and after.startswith(cue.not_after))


def find_cues(text: str, table: Mapping[str, Iterable[str | Cue]]) -> list[Hit]:
    """Every cue of `table` in the compact `text`, in order, minus cancelled ones; where two overlap, the
    longer one stands ("怎么投诉" over "投诉")."""
    text = compact(text)
    hits: list[Hit] = []
    for value, items in table.items():
        for cue in map(_cue, items):
            start = text.find(cue.word)
            while start != -1:
                end = start + len(cue.word)
                if not _cancelled(text, start, end, cue):
                    hits.append(Hit(value, cue.word, start, cue.weight))
                start = text.find(cue.word, start + 1)
    kept: list[Hit] = []
    for hit in sorted(hits, key=lambda h: (-len(h.word), h.start)):
        if all(hit.end <= other.start or hit.start >= other.end for other in kept):
            kept.append(hit)
    return sorted(kept, key=lambda h: h.start)


def _unique(words: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(words))


# ---------------------------------------------------------------------------------------------------------
# phone numbers

_DIGIT_CLASS = "".join(re.escape(c) for c in DIGITS)
_SEPARATOR_CLASS = re.escape(DIGIT_SEPARATORS)
# Digits with separators or spaces between them, so spaced Vosk output ("幺 三 八") is one run too.
_DIGIT_RUN = re.compile(rf"[{_DIGIT_CLASS}](?:[\s{_SEPARATOR_CLASS}]*[{_DIGIT_CLASS}])*")
_MOBILE = re.compile(r"1[3-9]\d{9}")


def _digits(spoken: str) -> str:
    return "".join(DIGITS[c] for c in spoken if c in DIGITS)


def _classify(digits: str, *, cued: bool, after: str) -> tuple[str, str] | None:
    if len(digits) == 13 and digits.startswith("86") and _MOBILE.fullmatch(digits[2:]):
        digits = digits[2:]
    if len(digits) == 12 and digits.startswith("0") and _MOBILE.fullmatch(digits[1:]):
        digits = digits[1:]
    if _MOBILE.fullmatch(digits):
        return digits, "mobile"
    if digits.startswith("0") and len(digits) >= 10:
        # 010 and 02x are three-digit area codes, the others four (GB/T 2260 long-distance codes).
        code_length = 3 if digits[1] in "12" else 4
        code, local = digits[:code_length], digits[code_length:]
        if len(local) in (7, 8) and local[0] in "23456789":
            return f"{code}-{local}", "landline"
        return None
    if cued and len(digits) in (7, 8) and digits[0] in "23456789":
        return digits, "landline"
    if (
        11 < len(digits) <= 11 + PHONE_TRAILING_DIGITS
        and _MOBILE.fullmatch(digits[:11])
        and after.startswith(ADDRESS_UNITS)
    ):
        return digits[:11], "mobile"
    return None


def find_phones(text: str) -> list[PhoneNumber]:
    """Mobile numbers (11 digits, 1[3-9]…), landlines with area code (0xx/0xxx + 7-8 digits) and, after a
    phone cue, 7-8 digit local landlines; normalised to ASCII digits, each number once, in order. Runs of
    other lengths (a 6-digit code, "一二三", an 18-digit ID number, 12345) are not phone numbers."""
    text = compact(text)
    found: dict[str, PhoneNumber] = {}
    for match in _DIGIT_RUN.finditer(text):
        before = text[max(0, match.start() - PHONE_CUE_WINDOW) : match.start()]
        cued = any(cue in before for cue in PHONE_CUES)
        classified = _classify(_digits(match.group()), cued=cued, after=text[match.end() :])
        if classified is None:
            continue
        number, kind = classified
        found.setdefault(number, PhoneNumber(number, kind, contact=cued, start=match.start(), end=match.end()))
    return list(found.values())


def without_long_numbers(text: str) -> str:
    """`text` without runs of 7 or more spoken digits (phone, ID and account numbers): for titles, which lists
    and events show to more people than the caller's contact data is for."""
    return _DIGIT_RUN.sub(lambda m: "" if len(_digits(m.group())) >= 7 else m.group(), text).strip()


# ---------------------------------------------------------------------------------------------------------
# places

_NUMERALS = frozenset("零〇一二两三四五六七八九十百千幺洞")


def region_aliases(name: str) -> list[str]:
    """Short names for a region: its name without the administrative suffix, when what is left is at least
    two characters and not numerals only."""
    for suffix in REGION_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            alias = name[: -len(suffix)]
            if len(alias) >= 2 and not set(alias) <= _NUMERALS:
                return [alias]
            return []
    return []


@dataclass(frozen=True, slots=True)
class _Span:
    region: RegionName
    heard: str
    start: int
    alias: bool

    @property
    def end(self) -> int:
        return self.start + len(self.heard)


def _occurrences(text: str, word: str) -> Iterable[int]:
    start = text.find(word)
    while start != -1:
        yield start
        start = text.find(word, start + 1)


def find_places(text: str, regions: Sequence[RegionName]) -> list[PlaceMatch]:
    """Regions named in `text`, in order of first mention, each once.

    Full names count wherever they are heard. Short names ("和平" for 和平区) count when followed by one of
    `ALIAS_FOLLOWERS` ("和平这边") or when touching a place that counts ("沈阳和平区", "和平区南京街"). Where
    two matches overlap, the longer wins ("和平区" over "和平", "南京街社区" over "南京街")."""
    text = compact(text)
    spans: list[_Span] = []
    for region in regions:
        if region.name:
            spans.extend(_Span(region, region.name, start, False) for start in _occurrences(text, region.name))
        for alias in region_aliases(region.name):
            spans.extend(_Span(region, alias, start, True) for start in _occurrences(text, alias))
    # Drop matches inside a longer one; equal spans (two regions of one name) both stay.
    spans = [
        span
        for span in spans
        if not any(
            other.start <= span.start and span.end <= other.end and len(other.heard) > len(span.heard)
            for other in spans
        )
    ]
    accepted = [span for span in spans if not span.alias or text.startswith(ALIAS_FOLLOWERS, span.end)]
    waiting = [span for span in spans if span.alias and span not in accepted]
    grew = True
    while grew:
        grew = False
        for span in list(waiting):
            if any(span.end == other.start or other.end == span.start for other in accepted):
                accepted.append(span)
                waiting.remove(span)
                grew = True
    places: dict[int, PlaceMatch] = {}
    for span in sorted(accepted, key=lambda s: (s.start, s.alias)):
        places.setdefault(
            span.region.id,
            PlaceMatch(span.region.id, span.region.name, span.heard, span.region.level, span.start, span.alias),
        )
    return list(places.values())


def choose_region(places: Sequence[PlaceMatch], regions: Sequence[RegionName]) -> PlaceMatch | None:
    """The one region for the ticket: the place with most of its ancestors also named, then the deepest
    level, then a full name over a short one, then the first mentioned. Two regions of the same name tied at
    the top say nothing (the caller must be asked), and the next best is taken."""
    if not places:
        return None
    parents = {region.id: region.parent_id for region in regions}
    named = {place.region_id for place in places}

    def support(place: PlaceMatch) -> int:
        count, parent, seen = 0, parents.get(place.region_id), set()
        while parent is not None and parent not in seen:
            seen.add(parent)
            count += parent in named
            parent = parents.get(parent)
        return count

    ranked = sorted(places, key=lambda p: (-support(p), -p.level, p.alias, p.start))
    for place in ranked:
        key = (support(place), place.level, place.alias)
        rivals = [
            other
            for other in ranked
            if other is not place and (support(other), other.level, other.alias) == key and other.heard == place.heard
        ]
        if not rivals:
            return place
    return None


# ---------------------------------------------------------------------------------------------------------
# addresses

_NUM = "0-9０-９零〇一二两三四五六七八九十百千幺洞"
_SUFFIX_ALT = "|".join(map(re.escape, sorted(ADDRESS_SUFFIXES, key=len, reverse=True)))
_UNIT_ALT = "|".join(map(re.escape, sorted(ADDRESS_UNITS, key=len, reverse=True)))
_NAME_CHAR = "[\u4e00-\u9fff]"
# One place of an address: a name and its suffix (lazy, so the name ends at the first suffix).
_PART = re.compile(rf"({_NAME_CHAR}{{1,{ADDRESS_MAX_NAME}}}?)({_SUFFIX_ALT})")
_UNITS = re.compile(rf"(?:[{_NUM}]+(?:{_UNIT_ALT}))+")
_UNIT = re.compile(rf"([{_NUM}]+)({_UNIT_ALT})")
_NUMERAL_RUN = re.compile("[零〇一二两三四五六七八九幺洞0-9]{3,}")
_SMALL_UNITS = {"十": 10, "百": 100, "千": 1000}


def spoken_number(spoken: str) -> str:
    """ASCII digits for a spoken house, floor or room number: "十二" -> "12", "一百零五" -> "105", and a
    digit-by-digit "五零一" -> "501"."""
    if not any(c in _SMALL_UNITS for c in spoken):
        return _digits(spoken)
    total, digit = 0, None
    for char in spoken:
        if char in _SMALL_UNITS:
            total += (1 if digit is None else int(digit)) * _SMALL_UNITS[char]
            digit = None
        elif char in DIGITS:
            digit = DIGITS[char]
    if digit is not None:
        total += int(digit)
    return str(total)


def _name_start(name: str) -> int:
    """Where a place name starts inside the words before its suffix: after the last stop word, and after
    any run of three numerals (the tail of a number said before; "八一路" keeps its two)."""
    cut = 0
    for word in ADDRESS_STOP_WORDS:
        position = name.rfind(word)
        if position != -1:
            cut = max(cut, position + len(word))
    for run in _NUMERAL_RUN.finditer(name):
        cut = max(cut, run.end())
    return cut


def _address_at(text: str, first: re.Match[str]) -> tuple[str, int]:
    """The address that `first` begins (or "") and where the scan goes on."""
    name, suffix = first.group(1), first.group(2)
    name = name[_name_start(name) :]
    units = _UNITS.match(text, first.end())
    if (name + suffix).endswith(ADDRESS_NOT_PLACES):
        return "", first.end()
    if not (len(name) >= 2 or (len(name) == 1 and suffix in ADDRESS_ROADS and units)):
        return "", first.end()
    pieces, position = [name + suffix], first.end()
    while True:
        if units:
            pieces.append(_UNIT.sub(lambda m: spoken_number(m.group(1)) + m.group(2), units.group()))
            position = units.end()
        following = _PART.match(text, position)
        if (
            following is None
            or len(following.group(1)) < 2
            or _name_start(following.group(1)) != 0
            or following.group().endswith(ADDRESS_NOT_PLACES)
        ):
            return "".join(pieces), position
        pieces.append(following.group())
        position = following.end()
        units = _UNITS.match(text, position)


def find_addresses(text: str) -> list[str]:
    """Address snippets, in order: roads with house numbers ("中华路12号"), estates and buildings ("幸福小区
    3号楼2单元501室"), streets and communities ("兴华街道"). Spoken numbers in units become digits."""
    text = compact(text)
    snippets: list[str] = []
    position = 0
    while len(snippets) < ADDRESS_MAX_SNIPPETS:
        first = _PART.search(text, position)
        if first is None:
            break
        snippet, position = _address_at(text, first)
        if not snippet or any(snippet in known for known in snippets):
            continue
        # Said again with more detail: the fuller one replaces it.
        snippets = [known for known in snippets if known not in snippet] + [snippet]
    return snippets


# ---------------------------------------------------------------------------------------------------------
# appeal type, urgency, emergencies


def classify_appeal(text: str, *, emergencies: Sequence[Emergency] = ()) -> Choice | None:
    """The appeal type with the highest cue weight, or None when no cue (and no emergency) was heard."""
    hits = find_cues(text, APPEAL_CUES)
    hits += [Hit("help", word, e.start, EMERGENCY_HELP_WEIGHT) for e in emergencies for word in e.words[:1]]
    if not hits:
        return None
    scores: dict[str, int] = {}
    for hit in hits:
        scores[hit.value] = scores.get(hit.value, 0) + hit.weight
    best = max(APPEAL_PRECEDENCE, key=lambda value: (scores.get(value, 0), -APPEAL_PRECEDENCE.index(value)))
    return Choice(best, _unique(hit.word for hit in hits if hit.value == best))


_EMERGENCY_TABLE: dict[str, tuple[str | Cue, ...]] = {kind: spec.cues for kind, spec in EMERGENCIES.items()}
_EMERGENCY_OF_WORD: dict[str, str] = {_cue(c).word: kind for kind, spec in EMERGENCIES.items() for c in spec.cues}


def find_emergencies(text: str) -> list[Emergency]:
    """Emergency kinds heard, in order of first mention, each with its words."""
    by_kind: dict[str, list[Hit]] = {}
    for hit in find_cues(text, _EMERGENCY_TABLE):
        by_kind.setdefault(hit.value, []).append(hit)
    return [
        Emergency(
            kind,
            EMERGENCIES[kind].label,
            EMERGENCIES[kind].targets,
            _unique(hit.word for hit in hits),
            hits[0].start,
        )
        for kind, hits in by_kind.items()
    ]


def emergency_kind_of(word: str) -> str | None:
    """The emergency kind a word of `EMERGENCIES` belongs to (to tell which kinds an earlier alert covered)."""
    return _EMERGENCY_OF_WORD.get(word)


def classify_urgency(text: str, *, emergencies: Sequence[Emergency] = ()) -> Choice:
    """critical when an emergency was heard, urgent on an urgent cue, else normal (the Urgency choices)."""
    if emergencies:
        return Choice("critical", _unique(word for emergency in emergencies for word in emergency.words))
    hits = find_cues(text, URGENT_CUES)
    if hits:
        return Choice("urgent", _unique(hit.word for hit in hits))
    return Choice("normal", ())


# ---------------------------------------------------------------------------------------------------------
# all together


def extract(text: str, *, regions: Sequence[RegionName] = ()) -> Extraction:
    """Everything the ticket form can take from `text`."""
    text = compact(text)
    places = find_places(text, regions)
    emergencies = find_emergencies(text)
    return Extraction(
        phones=tuple(find_phones(text)),
        places=tuple(places),
        region=choose_region(places, regions),
        addresses=tuple(find_addresses(text)),
        appeal_type=classify_appeal(text, emergencies=emergencies),
        urgency=classify_urgency(text, emergencies=emergencies),
        emergencies=tuple(emergencies),
    )
