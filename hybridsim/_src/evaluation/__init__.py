"""The world model as evaluator: policies run closed loop in a world, scored, ranked."""
