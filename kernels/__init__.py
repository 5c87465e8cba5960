"""Warp kernels of hybridsim, shipped inside the package as ``hybridsim.kernels``.

Every ``@wp.kernel`` of the repository lives here, in one convention (after MuJoCo Warp;
``kernels/README.md``): each private kernel ``_name`` sits above the launcher ``name``
that calls it; parameters grouped under ``# Model:``, ``# Data in:`` and ``# Data out:``
comments with ``_in``/``_out`` suffixes; a leading batch index; a docstring with launch
dim, shapes and units. Warp is imported by the kernel modules: import them lazily.
"""
