"""Harbor's API definitions (``definitions`` of its swagger) as pydantic models, one module per resource.

Field names and types are Harbor's; what moorage adds is marked as an extension. Requests ignore fields
they do not know, as Harbor does; responses leave out what is unset, as Harbor's ``omitempty`` does.
"""
