"""sipha: a highly available SIP cluster and a distributed SIP load tester."""

from sipha._pure import install_if_requested

__version__ = "0.1.0"

# Before any other sipha module is imported: SIPHA_PURE=1 selects the pure-Python build.
PURE: bool = install_if_requested()
