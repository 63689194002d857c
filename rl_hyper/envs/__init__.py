"""Meta-task environments: task envs (one MDP per task) and the trial wrapper around them."""
