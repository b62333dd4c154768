"""sipha.report."""
