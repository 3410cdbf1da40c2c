"""The trace store: tables, engine factory, migrations, the write path and rollups."""
