"""Storage: engine and session factories, models, migrations."""

from newsletter.database.engine import Database, open_database

__all__ = ["Database", "open_database"]
