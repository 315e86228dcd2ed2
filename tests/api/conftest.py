"""The management API's tests run against moorage on SQLite and again on PostgreSQL."""

from tests.support.databases import moorage_on_each_database  # noqa: F401
