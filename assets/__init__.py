"""Bundled MJCF scenes, shipped inside the package as ``hybridsim.assets``."""
