"""What keeps the public site usable for citizens and useless for scripts: the arithmetic challenge of a
submission, the lockout of a ticket number after wrong query codes, rate limits keyed by what a request names
(a phone number, a ticket number), and the normal form of a phone number.

Everything here lives in Django's cache. With several web processes the cache must be shared (Redis or the
database cache; docs/public.md), or each process counts and remembers on its own.
"""

import hashlib
import hmac
import re
import secrets
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core import signing
from django.core.cache import cache
from django.utils.crypto import salted_hmac
from rest_framework import status
from rest_framework.throttling import SimpleRateThrottle

from hotline import clock
from hotline.errors import ApplicationError

# --- errors ----------------------------------------------------------------------------------------------


class TooManyRequests(ApplicationError):
    """A limit was reached; `retry_after` seconds until the next try may succeed."""

    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    default_code = "throttled"

    def __init__(self, message: str, *, retry_after: int, code: str | None = None):
        super().__init__(message, code=code, extra={"retry_after": retry_after})
        self.retry_after = retry_after


def _wait_text(seconds: int) -> str:
    minutes = max(1, -(-seconds // 60))
    return f"{minutes} 分钟" if minutes < 120 else f"{-(-minutes // 60)} 小时"


# --- rate limits -------------------------------------------------------------------------------------------


class ConfiguredRateThrottle(SimpleRateThrottle):
    """A DRF throttle whose rate is read from settings when a request comes (DRF binds rates at import), keyed
    by `ident` when one is given (a phone or ticket number) and otherwise by the client address."""

    def __init__(self, scope: str, ident: str | None = None):
        self.scope = scope
        self.ident = ident
        super().__init__()

    def get_rate(self) -> str | None:
        rates = settings.REST_FRAMEWORK.get("DEFAULT_THROTTLE_RATES") or {}
        rate = rates.get(self.scope or "") if isinstance(rates, dict) else None
        return str(rate) if rate else None

    def get_cache_key(self, request: Any, view: Any) -> str | None:
        ident = self.ident if self.ident is not None else self.get_ident(request)
        # Hashed: the ident may be a phone number, which must not sit in the cache in clear.
        digest = hashlib.sha256(f"{self.scope}:{ident}".encode()).hexdigest()[:32]
        return self.cache_format % {"scope": self.scope, "ident": digest}


def client_address(request: Any) -> str:
    """The address rate limits count for (DRF's rule, with REST_FRAMEWORK["NUM_PROXIES"]). `request` is a DRF
    request or a page's HttpRequest: DRF's throttles read only its META."""
    return str(ConfiguredRateThrottle("address").get_ident(request) or "")


def throttle(limits: Iterable[SimpleRateThrottle], *, message: str, request: Any = None, view: Any = None) -> None:
    """Count this request against each limit, as DRF does for a view's throttles (every limit counts the
    request, even when another one already refuses it), and refuse when any is exhausted. Pages and the
    status socket use the API's limits through this, so all of them share one budget."""
    waits = [limit.wait() or 1 for limit in limits if not limit.allow_request(request, view)]
    if waits:
        wait = int(max(waits)) + 1
        raise TooManyRequests(f"{message}请 {_wait_text(wait)}后再试。", retry_after=wait)


# --- phone numbers -----------------------------------------------------------------------------------------

MOBILE = re.compile(r"1[3-9]\d{9}")
LANDLINE = re.compile(r"0\d{2,3}\d{7,8}")


def normalize_phone(raw: str) -> str | None:
    """A mainland mobile (11 digits) or landline with its area code (0xx…, 10–12 digits), as digits only;
    None when it is neither. Full-width digits, spaces, dashes, brackets and a +86 / 0086 prefix are allowed."""
    text = unicodedata.normalize("NFKC", raw or "").strip()
    text = re.sub(r"[\s\-()（）]", "", text)
    if text.startswith("+86"):
        text = text[3:]
    elif text.startswith("0086"):
        text = text[4:]
    elif text.startswith("86") and len(text) == 13:
        text = text[2:]
    if MOBILE.fullmatch(text) or LANDLINE.fullmatch(text):
        return text
    return None


# --- the arithmetic challenge ------------------------------------------------------------------------------

CHALLENGE_SALT = "ticketing.public_guard.challenge"
NUMERALS = "零一二三四五六七八九"


def chinese_number(value: int) -> str:
    """0–99 as Chinese numerals (十二, 二十, 九十九)."""
    if value < 10:
        return NUMERALS[value]
    tens, ones = divmod(value, 10)
    return f"{'' if tens == 1 else NUMERALS[tens]}十{'' if ones == 0 else NUMERALS[ones]}"


@dataclass(frozen=True)
class Challenge:
    token: str
    question: str
    expires_at: datetime


def _answer_digest(nonce: str, answer: int) -> str:
    return salted_hmac(CHALLENGE_SALT, f"{nonce}:{answer}").hexdigest()


def challenge_issue() -> Challenge:
    """A question such as 「十二加七等于多少？」. The token carries a nonce, the expiry and a keyed digest of the
    answer (SECRET_KEY), signed; it reveals nothing of the answer and no server state is kept until it is used."""
    left, right = secrets.randbelow(20) + 1, secrets.randbelow(20) + 1
    if secrets.randbelow(2) and left != right:
        left, right = max(left, right), min(left, right)
        operator, answer = "减", left - right
    else:
        operator, answer = "加", left + right
    nonce = secrets.token_urlsafe(16)
    expires_at = clock.now() + timedelta(seconds=settings.PUBLIC_CHALLENGE_SECONDS)
    token = signing.dumps(
        {"n": nonce, "e": int(expires_at.timestamp()), "h": _answer_digest(nonce, answer)}, salt=CHALLENGE_SALT
    )
    question = f"{chinese_number(left)}{operator}{chinese_number(right)}等于多少？"
    return Challenge(token=token, question=question, expires_at=expires_at)


def _challenge_error(message: str, code: str) -> ApplicationError:
    return ApplicationError(message, code=code, extra={"field": "challenge_answer"})


def challenge_verify(*, token: str, answer: str) -> None:
    """Raises ApplicationError (field challenge_answer) unless `answer` is right for an unexpired token used for
    the first time. Any attempt uses the token up, so an answer cannot be guessed by trying them all."""
    try:
        payload = signing.loads(token or "", salt=CHALLENGE_SALT)
        nonce, expires, digest = str(payload["n"]), int(payload["e"]), str(payload["h"])
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        raise _challenge_error("验证题无效，请刷新后重新作答。", "challenge_invalid") from None
    remaining = expires - int(clock.now().timestamp())
    if remaining <= 0:
        raise _challenge_error("验证题已过期，请重新作答。", "challenge_expired")
    if not cache.add(f"public-challenge:{nonce}", 1, timeout=remaining):
        raise _challenge_error("验证题已使用过，请重新作答。", "challenge_used")
    given = unicodedata.normalize("NFKC", answer or "").strip()
    if not (given.isascii() and given.isdigit() and len(given) <= 3):
        raise _challenge_error("请用阿拉伯数字填写验证题的答案。", "challenge_wrong")
    if not hmac.compare_digest(_answer_digest(nonce, int(given)), digest):
        raise _challenge_error("验证题答案不正确，请重新作答。", "challenge_wrong")


# --- the lockout of a ticket number ------------------------------------------------------------------------


def _number_key(kind: str, number: str) -> str:
    return f"public-lookup-{kind}:{hashlib.sha256(number.encode()).hexdigest()[:32]}"


def lookup_locked_for(number: str) -> int:
    """Seconds until look-ups of `number` are answered again (0: not locked)."""
    until = cache.get(_number_key("locked", number))
    if until is None:
        return 0
    return max(1, int(until - clock.now().timestamp()))


def lookup_failed(number: str) -> None:
    """Count a wrong code (or an unknown number: the two are not told apart) and lock the number when the
    count reaches PUBLIC_LOOKUP_MAX_FAILURES within the window."""
    key = _number_key("failures", number)
    cache.add(key, 0, timeout=settings.PUBLIC_LOOKUP_FAILURE_WINDOW_SECONDS)
    try:
        failures = cache.incr(key)
    except ValueError:
        # Expired between add and incr.
        cache.set(key, 1, timeout=settings.PUBLIC_LOOKUP_FAILURE_WINDOW_SECONDS)
        failures = 1
    if failures >= settings.PUBLIC_LOOKUP_MAX_FAILURES:
        seconds = settings.PUBLIC_LOOKUP_LOCKOUT_SECONDS
        cache.set(_number_key("locked", number), clock.now().timestamp() + seconds, timeout=seconds)
        cache.delete(key)


def lookup_check_lock(number: str) -> None:
    seconds = lookup_locked_for(number)
    if seconds:
        raise TooManyRequests(
            f"该工单编号的查询码输错次数过多，为保护您的信息，请 {_wait_text(seconds)}后再查询。",
            retry_after=seconds,
            code="lookup_locked",
        )
