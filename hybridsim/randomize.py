"""Domain randomization: per-world physics and appearance parameters for every backend.

::

    import jax
    import hybridsim as hs
    from hybridsim.randomize import Range, RandomizeConfig, randomize

    config = RandomizeConfig(friction=Range(0.5, 1.5), gravity=Range(-0.5, 0.5))
    params = randomize("tabletop", jax.random.key(0), 64, config)
    model = hs.make_model("tabletop", 64, backend="c", params=params)
"""

from hybridsim._src.randomize import RandomizeConfig, Range, load_randomize_config, randomize

__all__ = ["RandomizeConfig", "Range", "load_randomize_config", "randomize"]
