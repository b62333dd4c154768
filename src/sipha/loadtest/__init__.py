"""sipha.loadtest."""
