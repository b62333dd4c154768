"""sipha.transport."""
