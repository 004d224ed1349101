"""Shared fixtures. Storage (Postgres schema per run, Redis prefix) and gallery/service fixtures live in their own
modules, registered here; the tiny-model fixtures follow below."""

pytest_plugins = ["tests.fixtures_storage"]
