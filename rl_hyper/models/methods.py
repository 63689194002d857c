"""The method table (PAPER_SPEC section 3): one frozen row of switches per method id.

The RLModule and the Learner read these switches; no method has a class of its own.
Adding a method = adding one row to `METHODS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

PolicyInput = Literal["latent", "state_latent", "hyper"]
HyperInit = Literal["bias", "kaiming"]
AuxLoss = Literal["none", "task_raw", "task_embedding", "elbo"]
WarmUp = Literal["none", "reset", "continue"]


@dataclass(frozen=True)
class Method:
    """Switches that define one method.

    policy_input: "latent" = latent embedding only (RNN / RL^2); "state_latent" = [state
        embedding, latent embedding] (RNN+S); "hyper" = base net on the state embedding whose
        weights a hypernetwork generates from the latent embedding (RNN+HN).
    hyper_init: Bias-HyperInit ("bias") or Kaiming-uniform heads ("kaiming"); hyper only.
    aux_loss: extra objective: "task_raw" (decode the raw task descriptor, TI Naive),
        "task_embedding" (decode the warm-up task embedding g(c), TI / TI++), "elbo" (VariBAD).
    rl_grad_to_encoder: whether PPO gradients reach the GRU encoder (False = stop-gradient at
        the latent; the encoder then learns only from `aux_loss`).
    warm_up: multi-task warm-up on g(c) before meta-training (the first N PPO updates, N =
        learner_config_dict["warm_up_updates"]): the policy is conditioned on the task embedding
        g(c) instead of the latent. "reset" (TI): the encoder is frozen during warm-up, and after
        it every policy parameter except g is re-initialised; "continue" (TI++): the encoder
        learns from `aux_loss` during warm-up, and the policy is kept.
    normalize_latent: the policy reads [mu, logvar] normalised by a running mean/std (VariBAD).
    """

    id: str
    name: str
    policy_input: PolicyInput
    hyper_init: HyperInit = "bias"
    aux_loss: AuxLoss = "none"
    rl_grad_to_encoder: bool = True
    warm_up: WarmUp = "none"
    normalize_latent: bool = False

    def __post_init__(self):
        if (self.warm_up != "none") != (self.aux_loss == "task_embedding"):
            raise ValueError(f"{self.id}: a warm-up needs the task-embedding loss and vice versa")
        if self.aux_loss != "none" and self.rl_grad_to_encoder:
            raise ValueError(f"{self.id}: an auxiliary objective trains the encoder alone")

    @property
    def uses_hypernetwork(self) -> bool:
        return self.policy_input == "hyper"

    @property
    def uses_task(self) -> bool:
        """Whether the learner needs the task descriptor of every step (TI losses, warm-up)."""
        return self.aux_loss in ("task_raw", "task_embedding")


METHODS: dict[str, Method] = {
    m.id: m
    for m in (
        Method("rnn", "RNN", "latent"),
        Method("rnn_s", "RNN+S", "state_latent"),
        Method("rnn_hn", "RNN+HN", "hyper"),
        Method("rnn_hn_kaiming", "RNN+HN-Kaiming", "hyper", hyper_init="kaiming"),
        Method("ti_naive", "TI Naive", "state_latent", aux_loss="task_raw", rl_grad_to_encoder=False),
        Method("ti", "TI", "state_latent", aux_loss="task_embedding", rl_grad_to_encoder=False, warm_up="reset"),
        Method("ti_pp", "TI++", "state_latent", aux_loss="task_embedding", rl_grad_to_encoder=False, warm_up="continue"),
        Method("ti_pp_hn", "TI++HN", "hyper", aux_loss="task_embedding", rl_grad_to_encoder=False, warm_up="continue"),
        Method("vi", "VI", "state_latent", aux_loss="elbo", rl_grad_to_encoder=False, normalize_latent=True),
        Method("vi_hn", "VI+HN", "hyper", aux_loss="elbo", rl_grad_to_encoder=False, normalize_latent=True),
    )
}


class UnknownMethodError(ValueError):
    """A method id that is not in the table."""


def get_method(method_id: str) -> Method:
    if method_id not in METHODS:
        raise UnknownMethodError(f"unknown method {method_id!r}; choose from: {', '.join(METHODS)}")
    return METHODS[method_id]
