"""sipha.dispatcher.schedulers: destination-selection algorithms, registered by name.

Importing the package registers every built-in algorithm; use `create(name, destinations,
rng=..., options=...)` and `available()`.
"""

from . import failover, hashing, least_conn, load, maglev, random_pick, rr, wrr
from .base import (
    Destination,
    RequestKey,
    Scheduler,
    SchedulerBase,
    ServerView,
    available,
    create,
    register,
)

__all__ = [
    "Destination",
    "RequestKey",
    "Scheduler",
    "SchedulerBase",
    "ServerView",
    "available",
    "create",
    "failover",
    "hashing",
    "least_conn",
    "load",
    "maglev",
    "random_pick",
    "register",
    "rr",
    "wrr",
]
