"""sipha.dispatcher.schedulers: destination-selection algorithms, registered by name.

One small module per algorithm behind one interface (`base.Scheduler`), registered by name:

* IPVS: `rr`, `wrr`, `lc`, `wlc`, `sed`, `nq`, `dh`, `sh`, `maglev` (``mh``), `fo`, `ovf`,
  `twos`;
* Kamailio: `hashing` (the hash-callid/from/to/ruri/authuser family, one table of keys),
  `uniform` (``random``), `prio`, `srv`, `cl`, `rweight`, `lat`.

`picking` and `stablehash` hold the arithmetic several of them share. Importing the package
registers every built-in algorithm; use `create(name, destinations, rng=..., options=...)`
and `available()`.
"""

from . import (  # noqa: F401  - imported to register the algorithms
    cl,
    dh,
    fo,
    hashing,
    lat,
    lc,
    maglev,
    nq,
    ovf,
    prio,
    rr,
    rweight,
    sed,
    sh,
    srv,
    twos,
    uniform,
    wlc,
    wrr,
)
from .base import (
    CHEAP_KEY_FIELDS,
    CallEvents,
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
    "CHEAP_KEY_FIELDS",
    "CallEvents",
    "Destination",
    "RequestKey",
    "Scheduler",
    "SchedulerBase",
    "ServerView",
    "available",
    "create",
    "register",
]
