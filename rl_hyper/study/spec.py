"""The study YAML schema: what one equal-compute sweep runs, validated before Ray starts.

A study = one environment x methods x learning-rate grid x seeds, every trial with the same frame
budget (`frames`, warm-up frames included). There is deliberately no per-method budget or grid:
unknown keys are errors everywhere, so a `budget:` under a method or a `frames_per_method:` key
fails loudly instead of being ignored.

    study = load_study("tune_configs/quickstart.yaml")   # raises StudyError (one line) if invalid
    study.trials()   # [Trial(method="rnn", lr=0.001, seed=73), ...]: method x lr x seed

Example file (tune_configs/ holds the real ones):

    name: gridnavi_demo
    env: GridNavi
    methods: [rnn, rnn_hn]
    lr_grid: [1.0e-3, 3.0e-4]
    seeds: [73, 20]
    frames: 60_000            # env steps per trial; "4e6" is accepted too
    ppo: {clip_param: 0.05, entropy_coeff: 0.1}
    evaluation: {interval: 5}
    resources: {num_env_runners: 0, envs_per_runner: 16}
    logging: {mlflow: true, wandb: {mode: offline}}   # optional; needs the packages (rl_hyper[tracking])
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    StrictBool,
    StrictInt,
    ValidationError,
    field_validator,
    model_validator,
)

from rl_hyper.envs.registry import get_entry
from rl_hyper.models.methods import get_method

# URI schemes Ray Tune's storage_path understands (through pyarrow.fs); anything else is a local path.
_STORAGE_SCHEMES = ("s3", "gs", "gcs", "hdfs", "file")


class StudyError(ValueError):
    """An invalid or unreadable study file; the message is one line naming the file and field."""


class Trial(NamedTuple):
    """One Tune trial of a study: a method at one learning rate and one seed."""

    method: str
    lr: float
    seed: int


def _method_id(value: Any) -> Any:
    """Reject a mapping in the method list (e.g. `{id: rnn, budget: ...}`): methods carry no settings."""
    if isinstance(value, dict):
        keys = ", ".join(repr(k) for k in value)
        raise ValueError(
            f"a method entry is a method id, not a mapping (got keys {keys}); "
            "every method shares the study's frames, lr_grid and seeds"
        )
    return value


def _known_method(value: str) -> str:
    return get_method(value).id  # UnknownMethodError (a ValueError) names the choices


def _known_env(value: str) -> str:
    return get_entry(value).name  # UnknownEnvError (a ValueError) names the choices


def _study_name(value: str) -> str:
    if not value or not all(c.isalnum() or c in "_.-" for c in value) or value[0] in ".-":
        raise ValueError(f"invalid name {value!r}: use letters, digits, '_', '.', '-' (it names the results folder)")
    return value


def _frame_count(value: Any) -> Any:
    """Accept scientific notation ("4e6", which YAML reads as a string, or 4.0e6); the int check follows."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _storage(value: str) -> str:
    if not value:
        raise ValueError("storage must be a local directory or a URI such as s3://bucket/path")
    if "://" in value:
        scheme = value.split("://", 1)[0]
        if scheme not in _STORAGE_SCHEMES:
            raise ValueError(f"unsupported storage scheme {scheme!r}; use a local path or one of: {', '.join(_STORAGE_SCHEMES)}")
    return value


MethodId = Annotated[str, BeforeValidator(_method_id), AfterValidator(_known_method)]
Seed = Annotated[StrictInt, Field(ge=0)]
FrameBudget = Annotated[StrictInt, BeforeValidator(_frame_count), Field(gt=0)]


class _Section(BaseModel):
    """Base of every schema model: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")


class PPOOverrides(_Section):
    """PPO settings a study sets explicitly (PAPER_SPEC section 5); None = the training default.

    Batch layout: one update uses `resources.parallel_envs * rollout_steps_per_env` env steps,
    split into `minibatches` minibatches, for `num_epochs` passes.
    """

    clip_param: PositiveFloat | None = None
    entropy_coeff: NonNegativeFloat | None = None
    gamma: Annotated[float, Field(gt=0, le=1)] | None = None
    lambda_: Annotated[float, Field(ge=0, le=1)] | None = None
    num_epochs: PositiveInt | None = None
    minibatches: PositiveInt | None = None
    rollout_steps_per_env: PositiveInt | None = None
    vf_loss_coeff: NonNegativeFloat | None = None
    grad_clip: PositiveFloat | None = None
    adam_eps: PositiveFloat | None = None
    lr_schedule: Literal["constant", "linear_to_zero"] | None = None  # MC-LS decays the LR to 0
    max_seq_len: PositiveInt | None = None  # GRU backprop window in steps; None = the full trial
    # the original code's optimisation is the default; these switch parts of it off (training/learner.py)
    minibatch_mode: Literal["random_steps", "sequences"] | None = None
    value_loss: Literal["huber", "squared"] | None = None
    encoder_optimizer: Literal["separate", "joint"] | None = None
    encoder_adam_eps: PositiveFloat | None = None

    def overrides(self) -> dict[str, Any]:
        """The settings given in the file, as a dict (keys as above)."""
        return self.model_dump(exclude_none=True)


class AuxOverrides(_Section):
    """Settings of the auxiliary objectives (VariBAD, TI) a study sets explicitly; None = the env's
    default (training/settings.py `AuxSettings`)."""

    kl_weight: NonNegativeFloat | None = None
    aux_lr: PositiveFloat | None = None
    vae_buffer_trajectories: PositiveInt | None = None
    vae_batch_trajectories: PositiveInt | None = None
    vae_updates: NonNegativeInt | None = None
    latent_norm_window: PositiveFloat | None = None  # in updates; .inf = cumulative statistics
    latent_norm_clip: PositiveFloat | None = None  # .inf = no clamp

    def overrides(self) -> dict[str, Any]:
        """The settings given in the file, as a dict (keys as above)."""
        return self.model_dump(exclude_none=True)


class Evaluation(_Section):
    """Periodic evaluation, one full trial per task (training/evaluation.py)."""

    interval: PositiveInt = 10  # training iterations between evaluations
    num_tasks: PositiveInt = 16  # trials (at least, with task_set "all")
    task_set: Literal["all", "sampled"] = "all"  # "all": every task of a finite task set (GridNavi: 21)
    deterministic: StrictBool = True


class Resources(_Section):
    """Per-trial resources. num_env_runners = 0 samples in the learner's process."""

    num_env_runners: NonNegativeInt = 0
    envs_per_runner: PositiveInt = 16
    cpus_per_trial: PositiveFloat | None = None  # None -> 1 (learner) + num_env_runners
    num_gpus_per_learner: NonNegativeFloat = 0.0
    max_concurrent: PositiveInt | None = None  # None -> as many trials as the cluster fits

    @model_validator(mode="after")
    def _default_cpus(self) -> Resources:
        if self.cpus_per_trial is None:
            self.cpus_per_trial = float(1 + self.num_env_runners)
        return self

    @property
    def parallel_envs(self) -> int:
        """Environments sampled in parallel per trial (the paper uses 16)."""
        return max(1, self.num_env_runners) * self.envs_per_runner


def _switched_on(value: Any) -> Any:
    """`mlflow: true` / `wandb: true` = the defaults; false or null = off."""
    if value is True:
        return {}
    if value is False:
        return None
    return value


class MLflowLogging(_Section):
    """Tune's MLflowLoggerCallback: one MLflow run per trial (needs the mlflow package)."""

    tracking_uri: str | None = None  # None: MLflow's default (./mlruns); e.g. file:/data/mlruns, http://host:5000
    experiment_name: str | None = None  # None: the study name
    tags: dict[str, str] = Field(default_factory=dict)


class WandbLogging(_Section):
    """Tune's WandbLoggerCallback: one W&B run per trial (needs the wandb package)."""

    project: str | None = None  # None: the study name
    group: str | None = None
    entity: str | None = None
    mode: Literal["online", "offline", "disabled"] = "online"  # offline: no account needed; `wandb sync` later
    dir: str | None = None  # where W&B writes its files (None: ./wandb)


class Logging(_Section):
    """Where results go besides Tune's files and TensorBoard (training/loggers.py); off by default."""

    mlflow: Annotated[MLflowLogging | None, BeforeValidator(_switched_on)] = None
    wandb: Annotated[WandbLogging | None, BeforeValidator(_switched_on)] = None

    def tracking(self) -> dict[str, dict]:
        """{"mlflow": settings, "wandb": settings} for the loggers switched on (unset fields left out)."""
        return {name: section.model_dump(exclude_none=True) for name, section in
                (("mlflow", self.mlflow), ("wandb", self.wandb)) if section is not None}


class Study(_Section):
    """One equal-compute sweep: every (method, lr, seed) trial gets `frames` env steps."""

    name: Annotated[str, AfterValidator(_study_name)]
    env: Annotated[str, AfterValidator(_known_env)]
    methods: list[MethodId] = Field(min_length=1)
    lr_grid: list[PositiveFloat] = Field(min_length=1)
    seeds: list[Seed] = Field(min_length=1)
    frames: FrameBudget
    ppo: PPOOverrides = Field(default_factory=PPOOverrides)
    aux: AuxOverrides = Field(default_factory=AuxOverrides)
    evaluation: Evaluation = Field(default_factory=Evaluation)
    resources: Resources = Field(default_factory=Resources)
    storage: Annotated[str, AfterValidator(_storage)] = "results"
    max_failures: NonNegativeInt = 1  # retries per trial
    checkpoint_period_s: NonNegativeFloat = 300.0  # wall time between a trial's checkpoints; 0 = every iteration
    env_config: dict[str, Any] = Field(default_factory=dict)
    logging: Logging = Field(default_factory=Logging)

    @field_validator("methods", "lr_grid", "seeds")
    @classmethod
    def _unique(cls, values: list) -> list:
        duplicates = sorted({repr(v) for v in values if values.count(v) > 1})
        if duplicates:
            raise ValueError(f"duplicate entries: {', '.join(duplicates)}")
        return values

    def trials(self) -> list[Trial]:
        """Every trial, method-major then lr then seed, each in file order."""
        return [Trial(m, lr, seed) for m in self.methods for lr in self.lr_grid for seed in self.seeds]


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that rejects a key given twice in one mapping (PyYAML keeps the last silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        mapping = super().construct_mapping(node, deep=deep)
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return mapping


def load_study(path: str | Path) -> Study:
    """Read and validate a study YAML file; raise StudyError with a one-line message on any problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise StudyError(f"{path}: cannot read: {err.strerror or err}") from None
    except UnicodeDecodeError:
        raise StudyError(f"{path}: cannot read: not UTF-8 text") from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as err:
        raise StudyError(f"{path}: invalid YAML{_yaml_position(err)}: {_one_line(_yaml_problem(err))}") from None
    return parse_study(data, source=str(path))


def parse_study(data: Any, source: str = "<study>") -> Study:
    """Validate already-parsed YAML data; `source` prefixes error messages."""
    if data is None:
        raise StudyError(f"{source}: the file is empty; expected a mapping of study fields")
    if not isinstance(data, dict):
        raise StudyError(f"{source}: expected a mapping of study fields, got {type(data).__name__}")
    try:
        return Study.model_validate(data)
    except ValidationError as err:
        raise StudyError(f"{source}: " + " | ".join(_describe(e) for e in err.errors())) from None


def _describe(error: dict) -> str:
    """One pydantic error as `field.path: what is wrong`."""
    loc = ".".join(str(part) for part in error["loc"])
    if error["type"] == "extra_forbidden":
        allowed = ", ".join(_model_at(error["loc"][:-1]).model_fields)
        message = f"unknown key; allowed keys: {allowed}"
    elif error["type"] == "missing":
        message = "required field is missing"
    elif error["type"] == "too_short":
        message = "must not be empty"
    elif error["type"] == "value_error":
        message = str(error["ctx"]["error"])
    else:
        shown = repr(error["input"])
        message = f"{error['msg']} (got {shown if len(shown) <= 60 else shown[:57] + '...'})"
    return f"{loc}: {_one_line(message)}" if loc else _one_line(message)


def _model_at(loc: tuple) -> type[BaseModel]:
    """The schema model at a path of section names, e.g. ("ppo",) -> PPOOverrides."""
    model: type[BaseModel] = Study
    for part in loc:
        model = model.model_fields[part].annotation
    return model


def _yaml_position(err: yaml.YAMLError) -> str:
    mark = getattr(err, "problem_mark", None)
    return f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""


def _yaml_problem(err: yaml.YAMLError) -> str:
    return getattr(err, "problem", None) or str(err)


def _one_line(text: str) -> str:
    return " ".join(text.split())
