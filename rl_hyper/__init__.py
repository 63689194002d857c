"""rl_hyper: recurrent meta-RL (RNN, RNN+S, RNN+HN, task inference, VariBAD) on Ray RLlib and Tune."""

__version__ = "0.1.0"
