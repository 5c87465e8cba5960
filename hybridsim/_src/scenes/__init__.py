"""Scene building."""
