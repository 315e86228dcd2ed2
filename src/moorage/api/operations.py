"""Operations are declared once, by their handler: ``@operation(method, path, summary, tag)`` over an
``async def <operationId>(call, path=..., query=..., headers=..., body=...) -> <response>``.

The handler's name is Harbor's operationId; the types of its ``path``, ``query``, ``headers`` and ``body``
parameters say what the request carries (validated before the handler runs); its return type says what
it answers: a model, ``Page[Model]`` (a list with ``X-Total-Count`` and ``Link``), ``Created[...]`` (201
with ``Location``), ``None`` (200, no body) or a plain-text response. Routes and the OpenAPI document are
both built from these declarations, so the document always describes what is served.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

M = TypeVar("M")
H = TypeVar("H", bound=Callable[..., Awaitable[Any]])


@dataclass
class Page(Generic[M]):
    """One page of a listing and how many items all pages hold."""

    items: list[M]
    total: int


@dataclass
class Created(Generic[M]):
    """201 with ``Location`` (and, for some operations, a body)."""

    location: str
    body: M | None = None


@dataclass
class Operation:
    method: str
    path: str
    handler: Callable[..., Awaitable[Any]]
    summary: str
    tag: str
    operation_id: str
    #: The model of each place the request carries something: "path", "query", "headers", "body".
    inputs: dict[str, type[BaseModel]]
    #: The handler's return type.
    returns: Any
    #: May be called anonymously (public projects' content, system information).
    public: bool = False
    #: Statuses the operation may answer besides its success and the ones every operation may.
    errors: tuple[int, ...] = ()
    extension: bool = False

    @property
    def status(self) -> int:
        return 201 if typing.get_origin(self.returns) is Created or self.returns is Created else 200


OPERATIONS: list[Operation] = []
_INPUTS = ("path", "query", "headers", "body")


def operation(method: str, path: str, summary: str, tag: str, *, public: bool = False, errors: tuple[int, ...] = (),
              extension: bool = False) -> Callable[[H], H]:
    """Register the decorated handler as the operation ``method path`` (``extension``: not one of Harbor's)."""
    def register(handler: H) -> H:
        hints = typing.get_type_hints(handler)
        inputs = {}
        for name in inspect.signature(handler).parameters:
            if name in _INPUTS:
                model = hints[name]
                assert isinstance(model, type) and issubclass(model, BaseModel), (handler.__name__, name)
                inputs[name] = model
            else:
                assert name == "call", f"{handler.__name__}: unknown parameter {name}"
        OPERATIONS.append(Operation(method, path, handler, summary, tag, handler.__name__, inputs,
                                    hints.get("return"), public, errors, extension))
        return handler
    return register
