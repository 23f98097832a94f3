"""Error types raised by services, mapped once to HTTP for the API.

Services raise these with a machine `code` and a message for people (Chinese); views never build error
responses by hand.
"""

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler


class ApplicationError(Exception):
    """A request that is well-formed but cannot be carried out as asked."""

    status_code: int = status.HTTP_400_BAD_REQUEST
    default_code = "invalid_request"

    def __init__(self, message: str, *, code: str | None = None, extra: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.extra = extra or {}


class InvalidTransition(ApplicationError):
    """The ticket's state does not allow the asked transition."""

    status_code = status.HTTP_409_CONFLICT
    default_code = "invalid_transition"


class NotPermitted(ApplicationError):
    """The actor's role or department does not allow the action."""

    status_code = status.HTTP_403_FORBIDDEN
    default_code = "not_permitted"


class NotFound(ApplicationError):
    """Missing, or not visible to the actor: the two look the same from outside."""

    status_code = status.HTTP_404_NOT_FOUND
    default_code = "not_found"


class Conflict(ApplicationError):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


class IdempotencyMismatch(ApplicationError):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_code = "idempotency_key_reused"


def _body(code: str, detail: Any, errors: Any = None, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "detail": detail}
    if errors:
        body["errors"] = errors
    if extra:
        body.update(extra)
    return body


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """One shape for every API error: {"code", "detail", optional "errors" per field}."""
    if isinstance(exc, ApplicationError):
        return Response(_body(exc.code, exc.message, extra=exc.extra), status=exc.status_code)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound("未找到，或您无权查看。")
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()

    response = exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        response.data = _body("invalid", "请求数据有误，请检查各字段。", errors=response.data)
    elif isinstance(exc, exceptions.APIException):
        detail = response.data.get("detail", str(exc)) if isinstance(response.data, dict) else response.data
        codes = exc.get_codes()
        response.data = _body(codes if isinstance(codes, str) else "error", detail)
    return response
