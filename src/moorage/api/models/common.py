"""What every model shares: the base classes, bounded integers, times, and Harbor's error body."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema

from moorage.api.params import INT32_MAX, INT64_MAX

#: Integers as Harbor's ``format: int64``; anything a client sends beyond is refused, not overflowed.
Int64 = Annotated[int, Field(ge=-INT64_MAX - 1, le=INT64_MAX, json_schema_extra={"format": "int64"})]
Int32 = Annotated[int, Field(ge=-INT32_MAX - 1, le=INT32_MAX, json_schema_extra={"format": "int32"})]
_RFC3339 = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?"
                      r"([Zz]|[+-][0-9]{2}:[0-9]{2})")


def _rfc3339(value: str) -> str:
    """A time as RFC 3339 writes it (what ``format: date-time`` promises), refused otherwise."""
    try:
        if _RFC3339.fullmatch(value):
            datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
            return value
    except ValueError:
        pass
    raise ValueError(f"{value!r} is not a time in RFC 3339 form, such as 2024-05-01T10:00:00.000Z")


#: RFC 3339 in UTC with milliseconds (``moorage.api.base.iso``), as Harbor writes times.
DateTime = Annotated[str, AfterValidator(_rfc3339), WithJsonSchema({"type": "string", "format": "date-time"})]


class Model(BaseModel):
    """A Harbor definition. Unknown fields of a request are ignored, as Harbor does; known ones must have the
    JSON type the definition gives them (strict: ``false`` is no integer, ``1.5`` no string)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True, strict=True)

    def harbor(self) -> dict[str, Any]:
        """The JSON Harbor would send: unset (None) fields left out, aliases (``os.version``) used."""
        return self.model_dump(mode="json", exclude_none=True, by_alias=True)


class Error(Model):
    code: str
    message: str


class Errors(Model):
    errors: list[Error]
