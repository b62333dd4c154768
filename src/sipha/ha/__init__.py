"""sipha.ha."""
