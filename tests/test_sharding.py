"""Batches shard over several JAX devices and give the same numbers as one device."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import jax, numpy as np, hybridsim as hs
    hs.enable_compilation_cache()
    assert len(jax.devices()) == 2, jax.devices()
    ctrl = np.random.default_rng(0).uniform(-1, 1, (4, 20, 2))
    sharded = hs.make_model("arm2", 4, backend="mjx", substeps=2)
    single = hs.make_model("arm2", 4, backend="mjx", substeps=2, shard=False)
    assert sharded.sharding is not None and single.sharding is None
    a = hs.rollout(sharded, hs.init(sharded), ctrl)
    b = hs.rollout(single, hs.init(single), ctrl)
    assert len(a.qpos.sharding.device_set) == 2, a.qpos.sharding
    np.testing.assert_allclose(np.asarray(a.qpos), np.asarray(b.qpos), atol=1e-6)
    try:
        hs.make_model("arm2", 3, backend="mjx", shard=True)
    except hs.ShapeError as e:
        assert "multiple of the device count" in str(e)
    else:
        raise AssertionError("expected ShapeError")
    print("OK")
    """
)


def test_batch_shards_over_two_cpu_devices():
    env = dict(
        os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="--xla_force_host_platform_device_count=2"
    )
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().endswith("OK")
