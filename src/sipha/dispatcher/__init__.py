"""sipha.dispatcher."""
