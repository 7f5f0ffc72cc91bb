"""How a route describes itself in `/openapi.json` (and the Swagger UI at `/docs`).

Routes read and check their own input (the kit's `text_param`, exact operands...) because
their errors are finer than a schema's; these decorators only *describe* the query string and
the answers, through quart-schema's `document_*`, so the description never changes behaviour.
Unit tests check the described models against real answers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from quart_schema import document_querystring, document_request, document_response

T = TypeVar("T", bound=Callable[..., Any])


class ErrorBody(BaseModel):
    """Every error answer: `{"error", "status", ...details}` (details name the field or value)."""

    model_config = ConfigDict(extra="allow")

    error: str = Field(description="what went wrong, in words")
    status: int = Field(description="the HTTP status, repeated")


def query_param(description: str, *, required: bool = True, examples: list[str] | None = None) -> Any:
    """A query-string field of a documentation model.

    quart-schema reads "required" from the field's own schema (not the model's list), so it
    is put there.
    """
    extra: dict[str, Any] = {"required": True} if required else {}
    return Field(description=description, examples=examples, json_schema_extra=extra)


def documented(*, query: type[BaseModel] | None = None, body: Any = None, ok: Any = None,
               ok_status: int = 200, errors: Iterable[int] = ()) -> Callable[[T], T]:
    """Describe a route: its query string or JSON body, its answer on success, and its error
    statuses (each answered with an `ErrorBody`)."""

    def decorate(route: T) -> T:
        if ok is not None:
            route = document_response(ok, ok_status)(route)
        for status in sorted(set(errors)):
            route = document_response(ErrorBody, status)(route)
        if query is not None:
            route = document_querystring(query)(route)
        if body is not None:
            route = document_request(body)(route)
        return route

    return decorate
