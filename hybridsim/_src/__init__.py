"""Private implementation of hybridsim. Import from the public modules instead."""
