"""The trace store: tables, engine factory, migrations, the write path and rollups.

- ``engine``: one engine per URL per process, migrated on first use (``get_engine``); SQLite
  tuned for concurrent writers, ``read_only`` for readers that must never wait.
- ``models`` and the ``*_models`` modules: the tables, one module per feature; ``tables``:
  their SQLAlchemy Core handles, each module loaded on first use. ``migrate`` and
  ``migrations/``: Alembic, driven from code.
- ``writer``: the one write path for traces (price, insert once, rollups, watermark, one
  transaction); ``rollups``: the daily rollups it keeps and the cost report read from them;
  ``rebuild``: recut the rollups from the traces.
"""
