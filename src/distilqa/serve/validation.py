"""Check an answer request's JSON: one ``{question, context, top_k?, allow_null?}`` object or a list of them.

Every refusal is a :class:`RequestError` with the HTTP status (413 over a limit, 422 a wrong type or a missing
field), the field (``question``, ``[2].context``, ``items``) and, for limits, the limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

FIELDS = ("question", "context", "top_k", "allow_null")


@dataclass
class Limits:
    """Request limits of the server.

    Args:
        max_body_bytes (`int`): largest request body.
        max_question_chars (`int`): longest question.
        max_context_chars (`int`): longest context.
        max_items (`int`): most questions in one list.
        max_top_k (`int`): most alternatives (the post-processing's n_best).
    """

    max_body_bytes: int = 1_000_000
    max_question_chars: int = 1_000
    max_context_chars: int = 100_000
    max_items: int = 64
    max_top_k: int = 20


class RequestError(Exception):
    """A request the server refuses: ``status``, ``field`` and ``limit`` (or None) go into the JSON error."""

    def __init__(self, status: int, message: str, field: str | None = None, limit: int | None = None):
        super().__init__(message)
        self.status = status
        self.field = field
        self.limit = limit

    def payload(self) -> dict[str, Any]:
        out: dict[str, Any] = {"error": str(self), "field": self.field}
        if self.limit is not None:
            out["limit"] = self.limit
        return out


def parse_items(body: Any, limits: Limits) -> tuple[list[dict[str, Any]], bool]:
    """The checked items of a decoded JSON body, and whether it was a list."""
    if isinstance(body, dict):
        return [_item(body, "", limits)], False
    if not isinstance(body, list):
        raise RequestError(422, "the body must be a JSON object or a list of objects", field="body")
    if not body:
        raise RequestError(
            422, "the list is empty; give one or more {question, context} objects", field="items"
        )
    if len(body) > limits.max_items:
        raise RequestError(
            413, f"{len(body)} items, more than the limit of {limits.max_items}", "items", limits.max_items
        )
    return [_item(obj, f"[{i}].", limits) for i, obj in enumerate(body)], True


def _item(obj: Any, prefix: str, limits: Limits) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise RequestError(422, "each item must be a JSON object", field=prefix.rstrip(".") or "body")
    unknown = sorted(set(obj) - set(FIELDS))
    if unknown:
        raise RequestError(
            422,
            f"unknown field {unknown[0]!r}; the fields are {', '.join(FIELDS)}",
            field=prefix + unknown[0],
        )
    item: dict[str, Any] = {}
    for key, limit in (("question", limits.max_question_chars), ("context", limits.max_context_chars)):
        value = obj.get(key)
        name = prefix + key
        if key not in obj:
            raise RequestError(422, f"missing field {name!r}", field=name)
        if not isinstance(value, str) or not value.strip():
            raise RequestError(422, f"{name!r} must be a non-empty string", field=name)
        if len(value) > limit:
            raise RequestError(413, f"{name!r} has {len(value)} characters, more than {limit}", name, limit)
        item[key] = value
    top_k = obj.get("top_k")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int)):
        raise RequestError(422, f"{prefix}top_k must be an integer", field=prefix + "top_k")
    if top_k is not None and not 1 <= top_k <= limits.max_top_k:
        raise RequestError(
            422, f"{prefix}top_k must be between 1 and {limits.max_top_k}", prefix + "top_k", limits.max_top_k
        )
    allow_null = obj.get("allow_null", False)
    if not isinstance(allow_null, bool):
        raise RequestError(422, f"{prefix}allow_null must be true or false", field=prefix + "allow_null")
    item["top_k"] = top_k
    item["allow_null"] = allow_null
    return item
