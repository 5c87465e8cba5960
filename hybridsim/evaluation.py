"""The world model as evaluator: policies closed loop in a world, scored, ranked against a
reference; the model's own open-loop error against horizon.

::

    import hybridsim as hs
    from hybridsim import evaluation, residual, synthetic_reality

    scene = hs.load_scene("arm2")
    fitted = residual.load_fitted("runs/arm2", scene)
    worlds = {
        "physics": evaluation.PhysicsWorld(scene, substeps=2),
        "hybrid": evaluation.HybridWorld(scene, fitted),
        "reality": evaluation.RealityWorld(scene, synthetic_reality.parse_effects("default"),
                                           substeps=2),
    }
    policies = {"soft": evaluation.load_policy("examples/eval/pd_policies.py:pd_kp4"),
                "stiff": evaluation.load_policy("examples/eval/pd_policies.py:pd_kp32")}
    score = evaluation.load_score("examples/eval/pd_policies.py:tracking_score")
    qpos0, qvel0 = evaluation.initial_states(scene, episodes=16, seed=0, init_noise=0.05)
    results = {name: evaluation.evaluate_policies(world, policies, score, steps=300,
                                                  qpos0=qpos0, qvel0=qvel0)
               for name, world in worlds.items()}
    evaluation.ranking_metrics({p: r.mean for p, r in results["hybrid"].items()},
                               {p: r.mean for p, r in results["reality"].items()})

A policy is ``policy(obs: hybridsim.Observation) -> ctrl (B, nu)``; the same object runs
in physics, the hybrid, the environments (``TaskWorld``) and the synthetic reality. The
CLI: ``hybridsim eval policies`` and ``hybridsim eval model`` (docs/evaluation.md,
docs/evaluation_model.md).
"""

from hybridsim._src.errors import PolicyError
from hybridsim._src.evaluation.model_eval import (
    DEFAULT_HORIZONS,
    Calibration,
    ModelReport,
    evaluate_model,
    plot_model_report,
)
from hybridsim._src.evaluation.policy_eval import (
    PolicyResult,
    bootstrap_ci,
    evaluate_policies,
    initial_states,
    load_policy,
    load_score,
)
from hybridsim._src.evaluation.ranking import (
    kendall,
    mmrv,
    pearson,
    ranking_metrics,
    spearman,
    top1_regret,
)
from hybridsim._src.evaluation.reality_world import RealityWorld
from hybridsim._src.evaluation.report import write_report
from hybridsim._src.evaluation.saved_policy import load_policy_folder, save_policy
from hybridsim._src.evaluation.worlds import (
    HybridWorld,
    PhysicsWorld,
    TaskWorld,
    World,
    task_return,
)

__all__ = [
    "DEFAULT_HORIZONS",
    "Calibration",
    "HybridWorld",
    "ModelReport",
    "PhysicsWorld",
    "PolicyError",
    "PolicyResult",
    "RealityWorld",
    "TaskWorld",
    "World",
    "bootstrap_ci",
    "evaluate_model",
    "evaluate_policies",
    "initial_states",
    "kendall",
    "load_policy",
    "load_policy_folder",
    "load_score",
    "mmrv",
    "pearson",
    "plot_model_report",
    "ranking_metrics",
    "save_policy",
    "spearman",
    "task_return",
    "top1_regret",
    "write_report",
]
