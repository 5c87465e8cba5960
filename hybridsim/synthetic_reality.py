"""Synthetic realities for testing residual learning, recorded on MuJoCo C.

A synthetic reality is a scene plus effects the nominal model does not know (a synthetic
sim-to-real gap).

::

    from hybridsim import synthetic_reality
    effects = synthetic_reality.parse_effects("latency=2,backlash=0.05,coulomb=0.3")
    rec = synthetic_reality.record("arm2", effects, episodes=16, steps=200, seed=0, substeps=2)
    hybridsim.save_trajectory("real.npz", rec)   # the interchange format
"""

from hybridsim._src.synthetic_reality import (
    PRESETS,
    Behaviour,
    Effects,
    EffectsError,
    PolicyOutputError,
    RealityDivergedError,
    Recording,
    applied_controls,
    apply_to_model,
    behaviour_controls,
    parse_effects,
    record,
    run_policy,
    simulate,
)

__all__ = [
    "PRESETS",
    "Behaviour",
    "Effects",
    "EffectsError",
    "PolicyOutputError",
    "RealityDivergedError",
    "Recording",
    "applied_controls",
    "apply_to_model",
    "behaviour_controls",
    "parse_effects",
    "record",
    "run_policy",
    "simulate",
]
