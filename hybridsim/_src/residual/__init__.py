"""Learned residual dynamics on top of physics (private; see ``hybridsim.residual``)."""
