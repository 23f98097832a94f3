"""What the ticket form takes from a transcript (智能填单): pure functions over Vosk-like Mandarin text (words or
characters split by spaces, numbers as spoken Chinese numerals), matched against the demo city's region tree."""

import json

import pytest

from telephony import extraction as x
from ticketing.demo import load_city
from ticketing.models import AppealType, ExternalTarget, Urgency


@pytest.fixture(scope="module")
def regions() -> list[x.RegionName]:
    """The demo city's region tree (Shenyang), ids numbered in file order."""
    city = load_city()
    ids = {region.code: number for number, region in enumerate(city.regions, start=1)}
    return [
        x.RegionName(id=ids[r.code], name=r.name, level=r.level, parent_id=ids[r.parent] if r.parent else None)
        for r in city.regions
    ]


def region_named(regions: list[x.RegionName], name: str) -> x.RegionName:
    (region,) = [r for r in regions if r.name == name]
    return region


def numbers(text: str) -> list[str]:
    return [phone.number for phone in x.find_phones(text)]


# ---------------------------------------------------------------------------------------------------------
# phone numbers


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("我 的 电话 是 幺 三 八 一 二 三 四 五 六 七 八", ["13812345678"]),
        ("手机 号 幺三九 洞洞 幺二 三四五六", ["13900123456"]),
        ("联系 电话 一 五 九 两 四 六 八 零 零 九 七", ["15924680097"]),
        ("我 电话 13912345678 你 记 一下", ["13912345678"]),
        ("电话 幺三八 1234 五六七八", ["13812345678"]),
        ("号码 是 加 八 六 幺 八 六 一 二 三 四 五 六 七 八", ["18612345678"]),
        ("座机 零 二 四 八 八 一 二 三 四 五 六", ["024-88123456"]),
        ("零 二 四 杠 二 三 四 五 六 七 八 九", ["024-23456789"]),
        ("打 024-23456789 找 王 经理", ["024-23456789"]),
        ("北京 的 号码 零 幺 零 六 二 三 四 五 六 七 八", ["010-62345678"]),
        ("鞍山 那边 零 四 一 二 二 三 四 五 六 七 八", ["0412-2345678"]),
        ("你们 打 我 固话 八 八 一 二 三 四 五 六 就行", ["88123456"]),
        ("电话 幺三八一二三四五六七八 三 号楼 二 单元", ["13812345678"]),
        (
            "先 打 幺 三 八 一 二 三 四 五 六 七 八 不通 再 打 幺 三 九 八 七 六 五 四 三 二 一",
            ["13812345678", "13987654321"],
        ),
        ("电话 幺 三 八 一 二 三 四 五 六 七 八 对 幺 三 八 一 二 三 四 五 六 七 八", ["13812345678"]),
    ],
)
def test_phone_numbers_are_found_and_normalised(text, expected):
    assert numbers(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "验证码 是 一 二 三 四 五 六",  # six digits
        "我 的 号码 是 一 二 三 四 五 六",  # six digits, even after a phone cue
        "一二三 我 数 到 三",
        "打 了 好几 次 一 二 三 四 五",  # the hotline itself
        "身份证 号 二 一 零 一 零 二 一 九 九 零 零 一 零 一 一 二 三 四",  # 18 digits
        "八 八 一 二 三 四 五 六",  # a local number without a phone cue
        "一 二 零 一 二 三 四 五 六 七 八",  # eleven digits, but no mobile prefix
        "三 号楼 二 单元 五 零 一",
        "等 了 两三 天 一 直 没 人 来",
        "工单 号 一 二 三 四 五 二 零 二 六 一 一 二 二 零 零 零 一 二 三",
    ],
)
def test_other_numbers_are_not_phone_numbers(text):
    assert numbers(text) == []


def test_a_number_given_as_contact_is_marked_and_only_masked_in_the_evidence():
    found = x.extract(
        "物业 电话 幺 三 九 八 七 六 五 四 三 二 一 打 不通 我 的 电话 是 幺 三 八 一 二 三 四 五 六 七 八"
    )
    assert [(p.number, p.kind, p.contact) for p in found.phones] == [
        ("13987654321", "mobile", True),
        ("13812345678", "mobile", True),
    ]
    assert found.contact_phone == "13987654321"
    stored = json.dumps(found.as_dict(), ensure_ascii=False)
    assert "138****5678" in stored
    assert "13812345678" not in stored and "13987654321" not in stored


def test_a_number_said_without_a_cue_is_no_contact():
    found = x.extract("幺 三 八 一 二 三 四 五 六 七 八 这个 号 也 行")
    assert [p.contact for p in found.phones] == [False]
    assert found.contact_phone == ""


def test_long_numbers_are_left_out_of_text_for_titles():
    text = "我 的 电话 是 幺 三 八 一 二 三 四 五 六 七 八 家 在 三 号楼"
    assert x.without_long_numbers(x.readable(text)) == "我的电话是家在三号楼"


# ---------------------------------------------------------------------------------------------------------
# places


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("我 是 和平区 太原街 街道 的", ["和平区", "太原街街道"]),
        ("沈阳市 沈河区 五里河 这边", ["沈阳市", "沈河区", "五里河街道"]),
        ("我 住 和平 这边 路灯 坏 了", ["和平区"]),
        ("大东 那边 有 个 工地", ["大东区"]),
        ("沈阳 和平区 南京街 那块", ["沈阳市", "和平区", "南京街社区"]),
        ("三好 社区 门口", ["三好社区"]),
        ("五三 街道 办事处", ["五三街道"]),
        ("浑南区 白塔 街道", ["浑南区", "白塔街道"]),
    ],
)
def test_regions_are_matched_by_name_and_alias(regions, text, names):
    assert [place.name for place in x.find_places(text, regions)] == names


@pytest.mark.parametrize(
    "text",
    [
        "世界 和平 年代",  # 和平 without a place word after it
        "三好 学生",
        "南湖 公园 的 湖 水 很 臭",  # 南湖 of 南湖街道, but followed by 公园
        "电话 幺 三 八 五 三 二 一 四 五 六 七",  # 五三 is numerals: never a short name
        "我 要 去 大西 洋",
        "华山 论剑",
    ],
)
def test_short_names_inside_other_words_are_no_places(regions, text):
    assert x.find_places(text, regions) == []


def test_the_full_name_wins_over_its_alias(regions):
    (place,) = x.find_places("和平区", regions)
    assert (place.heard, place.alias) == ("和平区", False)


def test_the_region_chosen_is_the_deepest_that_the_caller_placed(regions):
    found = x.extract("我 是 和平区 的 在 太原街 这边", regions=regions)
    assert found.region is not None and found.region.name == "太原街街道"
    found = x.extract("沈河区 五里河 这边 和 三好 那边", regions=regions)
    # 五里河 has its district named too; 三好 (a community, deeper) has no ancestor said.
    assert found.region is not None and found.region.name == "五里河街道"
    assert x.extract("没有 说 地方", regions=regions).region is None


def test_two_regions_of_one_name_are_told_apart_by_their_parent():
    tree = [
        x.RegionName(1, "沈阳市", 2, None),
        x.RegionName(2, "铁西区", 3, 1),
        x.RegionName(3, "皇姑区", 3, 1),
        x.RegionName(4, "新华街道", 4, 2),
        x.RegionName(5, "新华街道", 4, 3),
    ]
    alone = x.extract("新华 街道", regions=tree)
    assert len(alone.places) == 2
    assert alone.region is None  # ambiguous: the agent has to ask
    placed = x.extract("皇姑区 新华街道", regions=tree)
    assert placed.region is not None and placed.region.region_id == 5


@pytest.mark.parametrize(
    ("name", "aliases"),
    [
        ("和平区", ["和平"]),
        ("沈北新区", ["沈北"]),
        ("太原街街道", ["太原街"]),
        ("南京街社区", ["南京街"]),
        ("辽宁省", ["辽宁"]),
        ("五三街道", []),
        ("北市场街道", ["北市场"]),
        ("康平县", ["康平"]),
    ],
)
def test_region_aliases(name, aliases):
    assert x.region_aliases(name) == aliases


# ---------------------------------------------------------------------------------------------------------
# addresses


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("我 家 住 在 幸福 小区 三 号楼 二 单元 五零一 室", ["幸福小区3号楼2单元501室"]),
        ("中华路 十二 号 门口 有人 摆摊", ["中华路12号"]),
        ("就 在 八一路 一百零五 号 对面", ["八一路105号"]),
        ("中街 五 号", ["中街5号"]),
        ("和平区 南京 北街 二十三 号 幸福 家园", ["和平区南京北街23号幸福家园"]),
        ("我们 住 在 兴华 街道 青年 社区", ["兴华街道青年社区"]),
        ("电话 幺 三 八 一 二 三 四 五 六 七 八 幸福 小区", ["幸福小区"]),
        ("我 投诉 阳光 花园 物业 还有 滨河 公园 的 厕所", ["阳光花园", "滨河公园"]),
    ],
)
def test_address_snippets(text, expected):
    assert x.find_addresses(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "过 马路 的 时候",
        "我 想 去 逛街",
        "去 中街 逛逛",  # a one-character road needs a house number
        "我们 小区 停水 了",
        "我们 楼 是 老旧 小区",
        "请 供电 公司 查一查 线路",
        "孩子 明年 九月 上 小学",
        "夜班 公交 线路",
    ],
)
def test_words_ending_like_places_are_no_addresses(text):
    assert x.find_addresses(text) == []


@pytest.mark.parametrize(
    ("spoken", "digits"),
    [("十", "10"), ("十二", "12"), ("二十三", "23"), ("一百零五", "105"), ("五零一", "501"), ("两", "2"), ("12", "12")],
)
def test_spoken_house_numbers(spoken, digits):
    assert x.spoken_number(spoken) == digits


# ---------------------------------------------------------------------------------------------------------
# appeal type and urgency


@pytest.mark.parametrize(
    ("text", "appeal_type", "word"),
    [
        ("我 要 投诉 楼下 饭店 晚上 噪音 扰民", "complaint", "投诉"),
        ("物业 不作为 垃圾 一直 没人 清", "complaint", "不作为"),
        ("请问 社保卡 丢 了 怎么 办理 补办", "inquiry", "请问"),
        ("我 想 咨询 一下 怎么 投诉 物业", "inquiry", "怎么投诉"),
        ("我 不是 投诉 就是 想 问一下 供暖 什么 时候 开始", "inquiry", "问一下"),
        ("我 要 举报 有人 私搭乱建", "report", "举报"),
        ("河 边 有 工厂 偷排 污水 这 是 违法 的", "report", "偷排"),
        ("老人 摔倒 起不来 了 帮帮 我们", "help", "帮帮"),
        ("建议 在 路口 增设 红绿灯", "suggestion", "建议"),
        ("我 想 表扬 一下 你们 的 工作人员 特别 负责", "praise", "表扬"),
        ("楼 里 着火 了", "help", "着火"),  # an emergency is a request for help
    ],
)
def test_appeal_type_from_cue_words(text, appeal_type, word):
    choice = x.classify_appeal(text, emergencies=x.find_emergencies(text))
    assert choice is not None and choice.value == appeal_type
    assert choice.value in AppealType.values
    assert word in choice.words


def test_no_cue_no_appeal_type():
    assert x.classify_appeal("喂 你好 嗯 对") is None


@pytest.mark.parametrize(
    ("text", "urgency", "words"),
    [
        ("我们 小区 停水 三 天 了", "urgent", ("停水",)),
        ("家里 没电 了 冰箱 都 化 了 麻烦 马上 来 人", "urgent", ("没电", "马上")),
        ("暖气 不热 老人 冻 得 不行", "urgent", ("暖气不热",)),
        ("井盖 丢 了 很 危险", "urgent", ("井盖", "危险")),
        ("不 着急 慢慢 处理", "normal", ()),
        ("燃气 费 怎么 交", "normal", ()),
        ("家里 燃气 打 不 着 火", "urgent", ("燃气",)),
        ("厨房 有 煤气 味", "critical", ("煤气味",)),
        ("我 想 办 个 居住证", "normal", ()),
    ],
)
def test_urgency(text, urgency, words):
    choice = x.classify_urgency(text, emergencies=x.find_emergencies(text))
    assert (choice.value, choice.words) == (urgency, words)
    assert choice.value in Urgency.values


# ---------------------------------------------------------------------------------------------------------
# emergencies


@pytest.mark.parametrize(
    ("text", "kinds", "words"),
    [
        ("楼下 着火 了 冒 黑烟", ["fire"], ["着火", "冒黑烟"]),
        ("厨房 煤气 泄漏 了 有 很 大 的 煤气 味", ["gas_leak"], ["煤气泄漏", "煤气味"]),
        ("单元 门口 闻到 燃气 味 不知道 哪家 漏气", ["gas_leak"], ["燃气味", "漏气"]),
        ("有 人 受伤 了 流血 很多", ["injury"], ["受伤", "流血"]),
        ("老人 在 卫生间 晕倒 了 叫 不醒", ["medical"], ["晕倒"]),
        ("工地 有 人 触电 了", ["electric_shock"], ["触电"]),
        ("孩子 掉 河里 了", ["drowning"], ["掉河里"]),
        ("门口 有 人 打架 还 拿 刀", ["violence"], ["打架", "拿刀"]),
        ("有 人 站 在 楼顶 要 跳楼", ["self_harm"], ["跳楼"]),
        ("路口 出 车祸 了 有人 受伤", ["traffic", "injury"], ["车祸", "受伤"]),
        ("电梯 困人 了 里面 有 老人", ["trapped"], ["电梯困人"]),
        ("老 房子 塌了", ["collapse"], ["塌了"]),
    ],
)
def test_emergency_words_and_their_kind(text, kinds, words):
    found = x.find_emergencies(text)
    assert [emergency.kind for emergency in found] == kinds
    assert [word for emergency in found for word in emergency.words] == words


@pytest.mark.parametrize(
    "text",
    [
        "没有 人 受伤 就是 车 刮 了",
        "人 没 受伤",
        "小区 消防 通道 堵塞 存在 火灾 隐患",
        "万一 着火 人 都 跑 不 出去",
        "楼上 住户 都 很 担心 起火",
        "自行车 轮胎 漏气 了",
        "饭店 烟囱 冒烟 污染 环境",
        "我 想 问问 煤气 费 在 哪 交",
        "这 是 个 爆炸 性 新闻",
        "一直 被困 扰",
    ],
)
def test_hazards_and_negations_are_no_emergency(text):
    assert x.find_emergencies(text) == []


def test_every_emergency_word_belongs_to_one_kind_and_every_target_is_real():
    seen: dict[str, str] = {}
    for kind, spec in x.EMERGENCIES.items():
        assert spec.label and spec.targets
        assert set(spec.targets) <= set(ExternalTarget.values)
        for cue in spec.cues:
            word = cue.word if isinstance(cue, x.Cue) else cue
            assert word not in seen, f"{word} is in {seen.get(word)} and {kind}"
            seen[word] = kind
            assert x.emergency_kind_of(word) == kind
    assert x.emergency_kind_of("噪音") is None


def test_cue_words_of_appeal_types_are_glossary_values():
    assert set(x.APPEAL_CUES) == set(AppealType.values) == set(x.APPEAL_PRECEDENCE)


# ---------------------------------------------------------------------------------------------------------
# a whole call


def test_a_whole_call_fills_every_field_with_its_evidence(regions):
    transcript = " ".join(
        [
            "喂 你好",
            "我 是 和平区 太原街 这边 的",
            "我 要 投诉 幸福 小区 三 号楼 楼下 的 烧烤店 晚上 噪音 扰民 没人管",
            "我 的 电话 是 幺 三 九 一 二 三 四 五 六 七 八",
        ]
    )
    found = x.extract(transcript, regions=regions)
    assert [phone.number for phone in found.phones] == ["13912345678"]
    assert found.contact_phone == "13912345678"
    assert found.region is not None
    assert found.region.region_id == region_named(regions, "太原街街道").id
    assert found.region.heard == "太原街" and found.region.alias
    assert found.addresses == ("和平区太原街", "幸福小区3号楼")
    assert found.location_text == "和平区太原街；幸福小区3号楼"
    assert found.appeal_type == x.Choice("complaint", ("投诉", "噪音", "扰民", "没人管"))
    assert found.urgency == x.Choice("normal", ())
    assert found.emergencies == ()
    evidence = found.as_dict()
    assert evidence["region"] == {
        "region_id": found.region.region_id,
        "name": "太原街街道",
        "heard": "太原街",
        "alias": True,
    }
    assert evidence["phones"] == [{"masked": "139****5678", "kind": "mobile", "contact": True}]
    json.dumps(evidence)


def test_an_emergency_call(regions):
    found = x.extract("快 来 人 啊 沈河区 五里河 这边 中华路 十二 号 着火 了 有人 受伤", regions=regions)
    assert [e.kind for e in found.emergencies] == ["fire", "injury"]
    assert found.urgency.value == "critical"
    assert found.appeal_type is not None and found.appeal_type.value == "help"
    assert found.region is not None and found.region.name == "五里河街道"
    assert "中华路12号" in found.location_text


def test_an_empty_transcript_finds_nothing(regions):
    found = x.extract("", regions=regions)
    assert found == x.Extraction()
    assert found.urgency.value == "normal" and found.location_text == "" and found.contact_phone == ""


def test_readable_removes_spaces_between_chinese_characters_only():
    assert x.readable("我 要 投诉  小区 噪音") == "我要投诉小区噪音"
    assert x.readable("파란색 으로 바꿔 줘") == "파란색 으로 바꿔 줘"
    assert x.readable("电话 13812345678 谢谢") == "电话 13812345678 谢谢"
