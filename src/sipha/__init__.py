"""sipha: a highly available SIP cluster and a distributed SIP load tester."""

__version__ = "0.1.0"
