"""Realities for testing residual learning: a scene plus unmodeled effects, recorded on MuJoCo C.

::

    from hybridsim import reality
    effects = reality.parse_effects("latency=2,backlash=0.05,coulomb=0.3")
    rec = reality.record("arm2", effects, episodes=16, steps=200, seed=0, substeps=2)
    hybridsim.save_trajectory("real.npz", rec)   # the interchange format
"""

from hybridsim._src.reality import (
    PRESETS,
    Behaviour,
    Effects,
    EffectsError,
    RealityDivergedError,
    Recording,
    applied_controls,
    apply_to_model,
    behaviour_controls,
    parse_effects,
    record,
    simulate,
)

__all__ = [
    "PRESETS",
    "Behaviour",
    "Effects",
    "EffectsError",
    "RealityDivergedError",
    "Recording",
    "applied_controls",
    "apply_to_model",
    "behaviour_controls",
    "parse_effects",
    "record",
    "simulate",
]
