"""The store's column types and the metadata every table is defined on, without the ORM.

The registry's tables, which ``resolve`` and ``prompts list`` read, are defined on ``METADATA``
in SQLAlchemy Core (``llmops.store.registry_tables``), so those commands never import
``sqlalchemy.orm``: about 60 ms of a start meant to stay under half a second. The models of
``llmops.store.models`` are declared on the same metadata, which Alembic compares against.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, DateTime, Integer, MetaData, TypeDecorator

from llmops.money import pico_to_usd, usd_to_pico

METADATA = MetaData()
"""Every store table's metadata (``Base.metadata``)."""


class Money(TypeDecorator[Decimal]):
    """USD as an exact Decimal in Python, integer picodollars in the database."""

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: Decimal | None, dialect: Any) -> int | None:
        """Dollars to the stored picodollars."""
        return None if value is None else usd_to_pico(Decimal(value))

    def process_result_value(self, value: int | None, dialect: Any) -> Decimal | None:
        """Stored picodollars to dollars."""
        return None if value is None else pico_to_usd(value)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in Python, naive UTC in the database (SQLite has no time zones)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        """An aware time to naive UTC; a naive one is taken as UTC already."""
        if value is None or value.tzinfo is None:
            return value
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        """Stored naive UTC to an aware UTC time."""
        return None if value is None else value.replace(tzinfo=UTC)


# SQLite only makes INTEGER PRIMARY KEY an autoincrementing rowid alias.
BigId = BigInteger().with_variant(Integer, "sqlite")
