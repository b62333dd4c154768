"""sipha.store: users, registrar bindings and dialogs shared by the SIP servers.

The server depends only on `Store` and the records; `open_store(url)` picks the backend.
"""

from sipha.store.base import Store
from sipha.store.errors import StoreUnavailable
from sipha.store.factory import open_store
from sipha.store.model import (
    Binding,
    BindingChange,
    DialogRecord,
    UpdateOutcome,
    UpdateResult,
    User,
    make_user,
)

__all__ = [
    "Binding",
    "BindingChange",
    "DialogRecord",
    "Store",
    "StoreUnavailable",
    "UpdateOutcome",
    "UpdateResult",
    "User",
    "make_user",
    "open_store",
]
