"""Physics backends behind one interface: ``c`` (MuJoCo C), ``mjx`` (MJX-JAX), ``warp``."""
