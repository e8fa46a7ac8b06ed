"""The OpenAPI 3.1 description of the server, served at ``GET /openapi.json``."""

from __future__ import annotations

from typing import Any

_ANSWER = {
    "type": "object",
    "properties": {
        "answer": {"type": "string"},
        "score": {"type": ["number", "null"]},
        "probability": {"type": ["number", "null"]},
        "start": {"type": ["integer", "null"], "description": "character offset in the context"},
        "end": {"type": ["integer", "null"]},
    },
}


def openapi_schema(limits) -> dict[str, Any]:
    """The schema, with the server's limits in it."""
    item = {
        "type": "object",
        "required": ["question", "context"],
        "additionalProperties": False,
        "properties": {
            "question": {"type": "string", "minLength": 1, "maxLength": limits.max_question_chars},
            "context": {"type": "string", "minLength": 1, "maxLength": limits.max_context_chars},
            "top_k": {"type": "integer", "minimum": 1, "maximum": limits.max_top_k},
            "allow_null": {"type": "boolean", "default": False},
        },
    }
    result = {
        **_ANSWER,
        "properties": {
            "question": {"type": "string"},
            **_ANSWER["properties"],
            "alternatives": {"type": "array", "items": _ANSWER},
        },
    }
    error = {"type": "object", "properties": {"error": {"type": "string"}, "field": {"type": ["string", "null"]}, "limit": {"type": "integer"}, "request_id": {"type": "string"}}}  # fmt: skip
    errors = {
        str(code): {"description": text, "content": {"application/json": {"schema": error}}}
        for code, text in (
            (400, "malformed JSON"),
            (413, "over a size limit"),
            (422, "a wrong type or a missing field"),
            (500, "the model failed on this request"),
            (503, "overloaded; see Retry-After"),
            (504, "not answered in time"),
        )
    }
    plain = {"200": {"description": "yes"}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "distilqa serve", "version": "1"},
        "paths": {
            "/v1/answer": {
                "post": {
                    "summary": "answer one question, or a list of them in order",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "oneOf": [
                                        item,
                                        {
                                            "type": "array",
                                            "items": item,
                                            "minItems": 1,
                                            "maxItems": limits.max_items,
                                        },
                                    ]
                                }
                            }
                        },  # fmt: skip
                    },
                    "responses": {
                        "200": {
                            "description": "the answers",
                            "content": {
                                "application/json": {
                                    "schema": {"oneOf": [result, {"type": "array", "items": result}]}
                                }
                            },
                        },  # fmt: skip
                        **errors,
                    },
                }
            },
            "/healthz": {"get": {"summary": "the process is alive", "responses": plain}},
            "/readyz": {
                "get": {
                    "summary": "the model is loaded and warm",
                    "responses": {**plain, "503": {"description": "loading"}},
                }
            },  # fmt: skip
            "/metrics": {"get": {"summary": "Prometheus text format", "responses": plain}},
        },
    }
