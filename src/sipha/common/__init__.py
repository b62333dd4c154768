"""sipha.common."""
