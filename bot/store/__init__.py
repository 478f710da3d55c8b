"""The database: models, migrations (run on open) and the outbox operations.

``open_store(url)`` gives a ``Store``; the outbox functions in ``bot.store.outbox`` take it.
"""

from bot.store.db import Store, open_store

__all__ = ["Store", "open_store"]
