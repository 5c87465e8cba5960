"""Warp kernels of hybridsim, shipped inside the package as ``hybridsim.kernels``.

Convention (after MuJoCo Warp): one kernel per function, parameters grouped under
``# Model:``, ``# Data in:`` and ``# Data out:`` comments with ``_in``/``_out``
suffixes, the world index first. Warp is imported lazily by the launchers.
"""
