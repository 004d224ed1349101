"""Persistence for ArtMatch: Postgres (pool, migrations, repositories) and Redis (cache, rate limit, outbox).

Importing it does no I/O; see `storage.db`, `storage.migrate`, `storage.repositories`, `storage.cache`.
"""
