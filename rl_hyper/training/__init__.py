"""One trial's training: PPO config, learner with auxiliary losses, connectors, metrics callbacks."""
