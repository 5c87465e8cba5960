"""Policy learning and planning through the world model: APG, SHAC, PPO, MPC."""
