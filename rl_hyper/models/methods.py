"""The method table (PAPER_SPEC section 3): one frozen row of switches per method id.

A method composes three parts: the encoder's sequence core (models/cores.py), the policy's
conditioning on the latent (models/policy.py) and the encoder's objective (none = RL gradients,
or VariBAD's ELBO with an optional task loss). The RLModule and the Learner read these switches;
no method has a class of its own. Adding a method = adding one row to `METHODS`; an invalid
combination fails when the row is built.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Core = Literal["gru", "lstm", "transformer"]
PolicyInput = Literal["latent", "state_latent", "film", "hyper"]
HyperInit = Literal["bias", "kaiming"]
TaskLoss = Literal["none", "task_raw", "task_embedding"]
WarmUp = Literal["none", "reset", "continue"]


@dataclass(frozen=True)
class Method:
    """Switches that define one method.

    policy_input: the conditioning. "latent" = latent embedding only (RNN / RL^2);
        "state_latent" = [state embedding, latent embedding] (RNN+S); "film" = an MLP on the state
        embedding whose hidden layers the latent embedding scales and shifts; "hyper" = base net on
        the state embedding whose weights a hypernetwork generates from the latent embedding (RNN+HN).
    hyper_init: Bias-HyperInit ("bias") or Kaiming-uniform heads ("kaiming"); hyper only.
    core: the encoder's sequence core: "gru" (the paper's), "lstm" or "transformer".
    elbo: the encoder is trained by VariBAD's ELBO (reward or state decoder + KL), from a buffer
        of past trials (training/learner.py).
    task_loss: task inference added to that objective: "task_raw" (decode the raw task
        descriptor, TI Naive), "task_embedding" (decode the warm-up task embedding g(c), TI /
        TI++). In the original code every TI method is VariBAD plus this term.
    rl_grad_to_encoder: whether PPO gradients reach the GRU encoder (False = stop-gradient at
        the latent; the encoder then learns only from its auxiliary objective).
    warm_up: multi-task warm-up on g(c) before meta-training (the first N PPO updates, N =
        learner_config_dict["warm_up_updates"]): the policy is conditioned on the task embedding
        g(c) instead of the latent. "reset" (TI): the encoder is frozen during warm-up, and after
        it every policy parameter except g is re-initialised; "continue" (TI++): the encoder
        learns from its objective during warm-up, and the policy is kept.
    normalize_latent: the policy reads [mu, logvar] normalised by a running mean/std (VariBAD).
    """

    id: str
    name: str
    policy_input: PolicyInput
    hyper_init: HyperInit = "bias"
    core: Core = "gru"
    elbo: bool = False
    task_loss: TaskLoss = "none"
    rl_grad_to_encoder: bool = True
    warm_up: WarmUp = "none"
    normalize_latent: bool = False

    def __post_init__(self):
        for field, value, choices in (("policy_input", self.policy_input, PolicyInput), ("core", self.core, Core),
                                      ("hyper_init", self.hyper_init, HyperInit), ("task_loss", self.task_loss, TaskLoss),
                                      ("warm_up", self.warm_up, WarmUp)):
            if value not in choices.__args__:
                raise ValueError(f"{self.id}: unknown {field} {value!r}; choose from {', '.join(choices.__args__)}")
        if self.hyper_init != "bias" and self.policy_input != "hyper":
            raise ValueError(f"{self.id}: hyper_init={self.hyper_init!r} needs policy_input 'hyper'")
        if (self.warm_up != "none") != (self.task_loss == "task_embedding"):
            raise ValueError(f"{self.id}: a warm-up needs the task-embedding loss and vice versa")
        if self.has_aux_objective and self.rl_grad_to_encoder:
            raise ValueError(f"{self.id}: an auxiliary objective trains the encoder alone")

    @property
    def uses_hypernetwork(self) -> bool:
        return self.policy_input == "hyper"

    @property
    def has_aux_objective(self) -> bool:
        """Whether the encoder learns from an objective of its own (ELBO and / or task loss)."""
        return self.elbo or self.task_loss != "none"

    @property
    def aux_loss(self) -> str:
        """The auxiliary objective in words: "none", "elbo", "elbo+task_raw", ..."""
        parts = (["elbo"] if self.elbo else []) + ([self.task_loss] if self.task_loss != "none" else [])
        return "+".join(parts) or "none"

    @property
    def uses_task(self) -> bool:
        """Whether the learner needs the task descriptor of every step (TI losses, warm-up)."""
        return self.task_loss != "none"


# VariBAD's base, as the original code builds VI and every TI method on it: the ELBO trains the
# encoder alone, and the policy reads the normalised latent
_VARIBAD = dict(elbo=True, rl_grad_to_encoder=False, normalize_latent=True)

METHODS: dict[str, Method] = {
    m.id: m
    for m in (
        # the paper's methods (PAPER_METHODS)
        Method("rnn", "RNN", "latent"),
        Method("rnn_s", "RNN+S", "state_latent"),
        Method("rnn_hn", "RNN+HN", "hyper"),
        Method("rnn_hn_kaiming", "RNN+HN-Kaiming", "hyper", hyper_init="kaiming"),
        Method("ti_naive", "TI Naive", "state_latent", task_loss="task_raw", **_VARIBAD),
        Method("ti", "TI", "state_latent", task_loss="task_embedding", warm_up="reset", **_VARIBAD),
        Method("ti_pp", "TI++", "state_latent", task_loss="task_embedding", warm_up="continue", **_VARIBAD),
        Method("ti_pp_hn", "TI++HN", "hyper", task_loss="task_embedding", warm_up="continue", **_VARIBAD),
        Method("vi", "VI", "state_latent", **_VARIBAD),
        Method("vi_hn", "VI+HN", "hyper", **_VARIBAD),
        # other sequence cores and conditionings
        Method("rnn_film", "RNN+FiLM", "film"),
        Method("lstm", "LSTM", "latent", core="lstm"),
        Method("lstm_hn", "LSTM+HN", "hyper", core="lstm"),
        Method("transformer", "Transformer", "latent", core="transformer"),
        Method("transformer_hn", "Transformer+HN", "hyper", core="transformer"),
        Method("vi_film", "VI+FiLM", "film", **_VARIBAD),
    )
}
PAPER_METHODS = tuple(list(METHODS)[:10])  # the methods the paper compares (its claims are about these)


class UnknownMethodError(ValueError):
    """A method id that is not in the table."""


def get_method(method_id: str) -> Method:
    if method_id not in METHODS:
        raise UnknownMethodError(f"unknown method {method_id!r}; choose from: {', '.join(METHODS)}")
    return METHODS[method_id]
