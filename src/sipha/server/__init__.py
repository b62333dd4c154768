"""sipha.server."""
