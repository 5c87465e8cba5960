"""The ``hybridsim`` command line."""
