"""Functional JAX environments (see ``hybridsim.envs``)."""
