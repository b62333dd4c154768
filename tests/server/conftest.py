"""Server test fixtures: the store tests' real redis-server, shared."""

from tests.store.conftest import redis_url

__all__ = ["redis_url"]
