"""Chinese text for searching: jieba segmentation, normalization, query terms and highlighted snippets.

The database backend indexes words, not characters: text is segmented with jieba in search mode (a long word
also yields the dictionary words inside it, so 社会保障 is found by 社会保障 and by 保障) and stored as
space-joined words, which SQLite FTS5 (unicode61) and PostgreSQL ('simple') then split on the spaces. Queries
go through the same function, so both sides always agree on what a word is.

The segmenter is jieba-rs (the `rjieba` binding): jieba's algorithm and dictionary in Rust, word for word the
same cuts as the Python jieba without its HMM (a test compares the two on real messages), at about twelve
times the speed; segmentation is nearly all of what indexing costs. It is loaded once per process, on first
use (0.15 s), together with the hotline's own words (`SEARCH_WORDS`) and every word of `SEARCH_SYNONYMS`.
Changing either changes how text is cut, so the database index must then be rebuilt (`manage.py
search_reindex`).
"""

from __future__ import annotations

import html
import logging
import re
import threading
import unicodedata
from collections.abc import Iterable, Sequence

import rjieba
from django.conf import settings

from .types import QueryTerms

logger = logging.getLogger(__name__)

# Function words and the courtesies every message carries: they match everything and rank nothing.
_STOPWORD_TEXT = """
    的 地 得 了 着 过 和 与 及 或 而 并 且 是 在 有 无 为 以 之 于 对 从 向 把 被 让 给 将 就 都 也 还 又 再 很 太
    我 你 您 他 她 它 我们 你们 他们 她们 咱们 自己 这 那 这个 那个 这些 那些 这里 那里 这样 那样 其 此 该 某
    吗 呢 吧 啊 呀 哦 嗯 哈 么 嘛 啦 哪 个 一 一个 一下 一些 之后 之前 以及 但是 但 因为 所以 如果 虽然 然后
    请问 请 您好 你好 谢谢 感谢 麻烦 怎么 怎么办 怎样 如何 什么 哪里 哪些 为什么 能否 可否 是否 可以 能 会 要 想
    """
STOPWORDS = frozenset(_STOPWORD_TEXT.split())

_WORD = re.compile(r"[^\W_]+")

# The hotline's words and synonym sets, plus what they were loaded with, guarded by one lock.
_lock = threading.Lock()
_tokenizer: rjieba.Jieba | None = None
_loaded_with: tuple[tuple[str, ...], tuple[tuple[str, ...], ...]] | None = None
_synonyms: dict[str, tuple[tuple[str, ...], ...]] = {}


# Full-width ASCII to ASCII: NFKC's commonest change in Chinese text, and one that keeps every offset.
_FULL_WIDTH = {code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}


_FULL_WIDTH_CHARS = re.compile("[\uff01-\uff5e\u3000]")
_TO_HALF_WIDTH = {chr(code): chr(half) for code, half in _FULL_WIDTH.items()}


def _half_width(match: re.Match[str]) -> str:
    return _TO_HALF_WIDTH[match.group()]


def normalize(text: str) -> str:
    """Full-width letters and digits to ASCII, lower case (NFKC).

    Chinese text is almost never in NFKC only because of its full-width punctuation: mapped first (what NFKC
    does to it), the rest usually passes the normalizer's quick check, and the full normalization runs only
    for the texts that still need it. The result is the same, at a third of the cost (measured on the
    replies: 0.09 s against 0.28 s for 2,812 messages with their replies)."""
    text = _FULL_WIDTH_CHARS.sub(_half_width, text)
    if not unicodedata.is_normalized("NFKC", text):
        text = unicodedata.normalize("NFKC", text)
    return text.lower()


def _configuration() -> tuple[tuple[str, ...], tuple[tuple[str, ...], ...]]:
    # Compared on every call (it is how tests and a reloaded configuration take effect), so kept cheap:
    # the raw values; normalizing happens only when the dictionary is (re)loaded.
    return tuple(settings.SEARCH_WORDS), tuple(tuple(group) for group in settings.SEARCH_SYNONYMS)


def tokenizer() -> rjieba.Jieba:
    """The process's segmenter, loaded on first use (and again only if the word settings changed)."""
    global _tokenizer, _loaded_with, _synonyms
    configuration = _configuration()
    if _tokenizer is not None and _loaded_with == configuration:
        return _tokenizer
    with _lock:
        if _tokenizer is None or _loaded_with != configuration:
            loaded = rjieba.Jieba()
            raw_words, raw_groups = configuration
            words = [normalize(word).strip() for word in raw_words if word.strip()]
            synonym_sets = [[normalize(word).strip() for word in group if word.strip()] for group in raw_groups]
            synonym_sets = [group for group in synonym_sets if len(group) > 1]
            for word in (*words, *(word for group in synonym_sets for word in group)):
                # The frequency that keeps the word whole, as jieba's add_word picks it when given none.
                loaded.add_word(word, loaded.suggest_freq(word), None)
            synonyms: dict[str, set[tuple[str, ...]]] = {}
            for group in synonym_sets:
                for word in group:
                    for other in group:
                        # A synonym is itself a dictionary word now; should jieba still cut it, all its
                        # words must match.
                        parts = tuple(_words(loaded.cut(other, False)))
                        if other != word and parts:
                            synonyms.setdefault(word, set()).add(parts)
            _synonyms = {word: tuple(sorted(alternatives)) for word, alternatives in synonyms.items()}
            _tokenizer, _loaded_with = loaded, configuration
    return _tokenizer


def _words(pieces: Iterable[str]) -> list[str]:
    # jieba keeps punctuation and spaces as pieces; a piece like "3.5" splits into "3" and "5" here exactly
    # as FTS5 and PostgreSQL would split it, so index, query and highlighting agree. Nearly every piece is a
    # word already (`isalnum`, the same test as the pattern's); only the others go through the pattern.
    words: list[str] = []
    for piece in pieces:
        if piece.isalnum():
            if piece not in STOPWORDS:
                words.append(piece)
        else:
            words.extend(word for word in _WORD.findall(piece) if word not in STOPWORDS)
    return words


def index_words(text: str) -> list[str]:
    """The words a text is indexed under (search mode: long words also give the words inside them)."""
    if not text:
        return []
    # No HMM: unknown names fall apart into single characters the same way in every context, where the HMM
    # would guess different boundaries for the same name depending on its neighbours.
    return _words(tokenizer().cut_for_search(normalize(text), False))


def index_terms(text: str) -> str:
    """`index_words`, space-joined: what the database backend stores."""
    return " ".join(index_words(text))


def synonyms_of(word: str) -> tuple[tuple[str, ...], ...]:
    """The other words of `word`'s synonym sets, each as the words it is indexed under."""
    tokenizer()
    return _synonyms.get(word, ())


def query_terms(text: str, *, max_words: int | None = None) -> QueryTerms:
    """What a query matches: each distinct word (stop words dropped), with its synonyms as alternatives.

    A long query (a whole ticket, when looking for similar ones) keeps its first `max_words` distinct words.
    """
    limit = max_words if max_words is not None else settings.SEARCH_MAX_QUERY_WORDS
    groups: list[tuple[tuple[str, ...], ...]] = []
    seen: set[str] = set()
    for word in index_words(text):
        if word in seen:
            continue
        seen.add(word)
        alternatives: list[tuple[str, ...]] = [(word,)]
        alternatives.extend(parts for parts in synonyms_of(word) if parts not in alternatives)
        groups.append(tuple(alternatives))
        if len(groups) >= limit:
            break
    return QueryTerms(groups=tuple(groups))


def query_expansions(text: str) -> list[str]:
    """Synonyms of the words in `text`, for a backend that analyses the query itself (Elasticsearch)."""
    expansions: list[str] = []
    for group in query_terms(text).groups:
        for alternative in group[1:]:
            phrase = "".join(alternative)
            if phrase not in expansions:
                expansions.append(phrase)
    return expansions


def _normalized_with_offsets(text: str) -> tuple[str, list[int] | None]:
    """The text as the index saw it, for finding matches. Full-width letters and digits and case are what
    matters in practice, and mapping them keeps every offset; the rest of NFKC ("①" -> "1") is left out
    rather than paying a per-character map on every snippet. Should lower-casing change the length, a map
    back to the original offsets is returned."""
    normalized = text.translate(_FULL_WIDTH).lower()
    if len(normalized) == len(text):
        return normalized, None
    parts: list[str] = []
    offsets: list[int] = []
    for index, char in enumerate(text):
        piece = char.translate(_FULL_WIDTH).lower()
        parts.append(piece)
        offsets.extend([index] * len(piece))
    return "".join(parts), offsets


def _densest_window(text: str, spans: Sequence[tuple[int, int]], *, width: int, lead: int) -> int:
    """Where a window of `width` characters, starting `lead` before a match, covers most distinct words."""
    best, best_count = 0, -1
    counts: dict[str, int] = {}
    last = 0
    for first, (start, _) in enumerate(spans):
        window_start = max(0, start - lead)
        window_end = window_start + width
        while last < len(spans) and spans[last][1] <= window_end:
            word = text[spans[last][0] : spans[last][1]].lower()
            counts[word] = counts.get(word, 0) + 1
            last += 1
        if len(counts) > best_count:
            best, best_count = window_start, len(counts)
        if first < last:
            word = text[start : spans[first][1]].lower()
            counts[word] -= 1
            if not counts[word]:
                del counts[word]
        else:
            last = first + 1
    return best


def snippet(text: str, words: Sequence[str], *, width: int | None = None) -> str:
    """A passage of `text` around the densest cluster of `words`, HTML-escaped, with each match in <mark>.

    Without a match, the beginning of the text.
    """
    width = width or settings.SEARCH_SNIPPET_CHARS
    text = " ".join(text.split())
    spans: list[tuple[int, int]] = []
    wanted = sorted({word for word in words if word}, key=len, reverse=True)
    if wanted and text:
        normalized, offsets = _normalized_with_offsets(text)
        pattern = re.compile("|".join(re.escape(word) for word in wanted))
        for match in pattern.finditer(normalized):
            start, end = match.start(), match.end()
            if offsets is not None:
                start, end = offsets[start], offsets[end - 1] + 1
            if not spans or start >= spans[-1][1]:
                spans.append((start, end))
    lead = min(20, width // 4)
    begin = _densest_window(text, spans, width=width, lead=lead) if spans else 0
    end = min(len(text), begin + width)
    begin = max(0, min(begin, end - width))
    pieces: list[str] = ["…"] if begin > 0 else []
    cursor = begin
    for start, stop in spans:
        if start < begin or stop > end:
            continue
        pieces.append(html.escape(text[cursor:start]))
        pieces.append(f"<mark>{html.escape(text[start:stop])}</mark>")
        cursor = stop
    pieces.append(html.escape(text[cursor:end]))
    if end < len(text):
        pieces.append("…")
    return "".join(pieces)
