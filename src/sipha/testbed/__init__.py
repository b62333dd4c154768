"""sipha.testbed."""
