"""Chinese text for search: segmentation, query terms with synonyms, snippets, personal-data scrubbing."""

from knowledge_base.search import text
from knowledge_base.search.documents import MASK, scrub_personal_data


def test_index_words_include_the_words_inside_long_words_and_drop_stopwords():
    words = text.index_words("请问社会保障卡怎么补办？")
    assert words[:4] == ["社会", "保障", "保障卡", "社会保障卡"] or {"社会", "保障", "社会保障卡"} <= set(words)
    assert "补办" in words
    assert not {"请问", "怎么", "？"} & set(words)


def test_full_width_letters_and_digits_are_folded_and_punctuation_splits():
    assert text.index_words("１２３４５热线ＡＢＣ") == text.index_words("12345热线abc")
    assert text.index_terms("3.5元/吨") == "3 5 元 吨"


def test_query_terms_carry_synonyms_as_alternatives():
    terms = text.query_terms("社保卡补办")
    groups = {group[0][0]: group[1:] for group in terms.groups}
    assert ("社会保障卡",) in groups["社保卡"]
    assert groups["补办"] == ()
    assert {"社保卡", "社会保障卡", "补办"} <= set(terms.words)


def test_long_queries_keep_their_first_distinct_words(settings):
    settings.SEARCH_MAX_QUERY_WORDS = 3
    terms = text.query_terms("小区 噪音 小区 施工 扰民 夜间")
    assert [group[0][0] for group in terms.groups] == ["小区", "噪音", "施工"]


def test_custom_words_and_synonyms_come_from_settings(settings):
    settings.SEARCH_WORDS = ["幸福里小区"]
    settings.SEARCH_SYNONYMS = [["幸福里小区", "幸福里社区"]]
    assert "幸福里小区" in text.index_words("幸福里小区停水")
    groups = {group[0][0]: group for group in text.query_terms("幸福里小区").groups}
    assert groups["幸福里小区"] == (("幸福里小区",), ("幸福里社区",))
    assert "接诉即办" not in text.index_words("接诉即办")  # the default word list is gone with the setting


def test_snippet_escapes_html_and_marks_matches():
    snippet = text.snippet('<b>注意</b> 社保卡 & "补办"', ["社保卡", "补办"])
    assert snippet == "&lt;b&gt;注意&lt;/b&gt; <mark>社保卡</mark> &amp; &quot;<mark>补办</mark>&quot;"


def test_snippet_finds_full_width_and_upper_case_text_and_keeps_the_original_characters():
    snippet = text.snippet("拨打１２３４５或登录ＷＷＷ网站", ["12345", "www"])
    assert snippet == "拨打<mark>１２３４５</mark>或登录<mark>ＷＷＷ</mark>网站"


def test_snippet_centres_on_the_densest_matches_of_a_long_text():
    filler = "这是与问题无关的说明文字。" * 30
    body = filler + "办理社会保障卡补办需要携带居民身份证。" + filler
    snippet = text.snippet(body, ["社会保障卡", "补办", "居民身份证"], width=60)
    assert snippet.startswith("…") and snippet.endswith("…")
    assert snippet.count("<mark>") == 3
    assert len(snippet.replace("<mark>", "").replace("</mark>", "").strip("…")) == 60


def test_snippet_without_a_match_is_the_beginning_of_the_text():
    assert text.snippet("甲" * 200, ["乙"], width=10) == "甲" * 10 + "…"
    assert text.snippet("", ["乙"]) == ""


def test_personal_data_is_scrubbed_from_ticket_text():
    raw = (
        "我叫王小明，手机13912345678，座机024-23456789，身份证21010219900101123X，"
        "旧证210102900101123，邮箱wxm@example.com，另一个号码 139 1234 5679。"
    )
    clean = scrub_personal_data(raw, names=["王小明"], numbers=["13912345678"])
    for personal in ("王小明", "13912345678", "23456789", "21010219900101123X", "210102900101123", "wxm@", "5679"):
        assert personal not in clean
    assert clean.count(MASK) == 7
    # A one-character name is not blanked out of everything.
    assert scrub_personal_data("王府井大街", names=["王"]) == "王府井大街"
    # The hotline's own number is not personal data.
    assert "12345" in scrub_personal_data("请拨打12345热线", names=[], numbers=[])


def test_the_rust_segmenter_cuts_exactly_as_python_jieba_does(settings):
    """The index is cut by jieba-rs (`rjieba`); the reference is the Python jieba, with the same hotline words
    added the way its own add_word adds them. Search mode without HMM must agree word for word, and in order.
    Real citizen messages and replies when ../shared/data is there, and awkward inputs always."""
    import json
    import logging
    from pathlib import Path

    import jieba

    settings.SEARCH_WORDS = ["12345热线", "物业费", "噪音扰民"]
    settings.SEARCH_SYNONYMS = [["暖气", "供暖", "供热"]]
    samples = [
        "ABC abc 3.5元 C++ hello-world 12345热线 a_b  \r\n x",
        "ＡＢＣ１２３ iPhone15手机 社保卡补办 幸福里小区停水 物业费 噪音扰民 暖气不热 供热",
        "①② ㎡ … 《条例》第12条：“应当”！？",
        "",
        "   ",
    ]
    data = Path(__file__).resolve().parents[3] / "shared" / "data" / "replies.jsonl"
    if data.exists():
        with data.open(encoding="utf-8") as rows:
            for n, line in enumerate(rows):
                if n >= 300:
                    break
                row = json.loads(line)
                samples.append(f"{row['title']} {row['body']} {row['reply']}")
    jieba.setLogLevel(logging.WARNING)
    reference = jieba.Tokenizer()
    reference.initialize()
    for word in ["12345热线", "物业费", "噪音扰民", "暖气", "供暖", "供热"]:
        reference.add_word(word)
    loaded = text.tokenizer()
    for sample in samples:
        normalized = text.normalize(sample)
        assert loaded.cut_for_search(normalized, False) == list(reference.cut_for_search(normalized, HMM=False))
        assert loaded.cut(normalized, False) == reference.lcut(normalized, HMM=False)
        # Words are taken from the pieces a piece at a time; the same as the one pattern over all of them.
        pieces = loaded.cut_for_search(normalized, False)
        expected = [word for word in text._WORD.findall(" ".join(pieces)) if word not in text.STOPWORDS]
        assert text._words(pieces) == expected


def test_on_a_large_index_the_rarest_words_pick_candidates_and_common_ones_only_rank(monkeypatch, settings):
    from knowledge_base.search.backends import database
    from knowledge_base.search.types import QueryTerms

    settings.SEARCH_COMMON_WORD_SHARE = 0.05
    settings.SEARCH_MAX_CANDIDATES = 1000
    stats = database.WordStats(
        documents=100_000,
        shares={"小区": 0.30, "问题": 0.20, "停水": 0.004, "幸福": 0.01, "管网": 0.0005},
        computed_at=0,
    )
    monkeypatch.setattr(database, "word_stats", lambda: stats)

    def groups(*words: str) -> QueryTerms:
        return QueryTerms(groups=tuple(((word,),) for word in words))

    # Rarest first, common words left to ranking: 50 + 400 expected matches fit the budget, + 1,000 does not.
    assert database.selecting_groups(groups("小区", "停水", "幸福", "管网")) == ([(("管网",),), (("停水",),)], False)
    # The candidate budget stops adding words once the expected matches pass it (but one word always picks).
    settings.SEARCH_MAX_CANDIDATES = 100
    assert database.selecting_groups(groups("停水", "幸福")) == ([(("停水",),)], False)
    # Only common words: all of them must match.
    assert database.selecting_groups(groups("小区", "问题")) == (groups("小区", "问题").groups, True)
    # A small index: plain OR over every word.
    monkeypatch.setattr(database, "word_stats", lambda: database.WordStats(documents=500, shares={}, computed_at=0))
    assert database.selecting_groups(groups("小区", "停水")) == (groups("小区", "停水").groups, False)
    # An alternative of several words is as rare as its rarest word; a group sums its alternatives.
    assert stats.share((("小区", "管网"),)) == 0.0005


def test_normalize_is_nfkc_and_lower_case():
    import unicodedata

    samples = [
        "幸福里小区，停水了！（３天）",
        "ＡＢＣ１２３　iPhone15手机",
        "①② ㎡ ｶﾀｶﾅ ﬁ Ⅻ …",
        "plain ascii",
        "",
    ]
    for sample in samples:
        assert text.normalize(sample) == unicodedata.normalize("NFKC", sample).lower()
