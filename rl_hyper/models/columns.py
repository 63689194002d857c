"""Names of the batch columns this platform adds to RLlib's (module, connectors, learner, objectives)."""

TASK = "task"  # (B, T, D): every step's task descriptor (training/connectors.py fills it)
ROLLOUT_LATENT = "rollout_latent"  # (B, T, 2L): [mu, logvar] computed while sampling (stop-gradient methods)
