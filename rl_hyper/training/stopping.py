"""SIGINT and SIGTERM stop a run the same way: every running trial writes a checkpoint and stops.

Ctrl-C sends SIGINT; schedulers, `kill` and `ray job stop` send SIGTERM. While `stop_on_signals`
is active in the driver, either one:

1. tells the trials, through a small named actor (STOP_ACTOR, kept on the driver's node so that
   losing another node does not lose it) that each trial asks after every training iteration; a
   trial that is told records that iteration with the actor, writes a checkpoint with its result
   and then waits to be ended (it does not return, or Tune would mark it finished);
2. `StopAtCheckpoint`, a Tune callback, waits until every running trial has reported that
   checkpoint (at most STOP_TIMEOUT_S; a periodic checkpoint that arrives after the request does
   not count), then ends Tune's loop the way Tune's own SIGINT handler does (SIGUSR1): Tune saves
   the experiment state and ends the trials;
3. the run's function then raises StoppedBySignal after writing its summary, and the command
   exits with 128 + the signal's number (130 for SIGINT, 143 for SIGTERM).

A second signal ends Tune's loop at once (trials keep their last periodic checkpoint). A
`--resume` continues every stopped trial from its checkpoint. Tune's own SIGINT handler is off
(TUNE_DISABLE_SIGINT_HANDLER) while this one is on; Ray's SIGTERM handler (a stack dump and exit
134) is replaced.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from contextlib import contextmanager

from ray import tune

STOP_ACTOR = "rl_hyper_stop_request"
STOP_TIMEOUT_S = 120.0  # longest wait for the running trials' checkpoints after a signal
SIGNALS = (signal.SIGINT, signal.SIGTERM)

_request = {"signum": None, "time": None, "ended": False}  # this driver's stop request


class StoppedBySignal(Exception):
    """The run stopped on a signal; its trials can be resumed. `signum`: the signal's number."""

    def __init__(self, signum: int):
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.signum = signum


class _StopFlag:
    """Ray actor holding whether the driver asked the trials to stop, and the training iteration
    at which each trial that saw the request stops (trial id -> iteration)."""

    def __init__(self):
        self.requested = False
        self.stop_iterations: dict[str, int] = {}

    def request(self) -> None:
        self.requested = True

    def is_requested(self) -> bool:
        return self.requested

    def record_stop(self, trial_id: str, iteration: int) -> None:
        self.stop_iterations[trial_id] = iteration

    def stop_iteration(self, trial_id: str) -> int | None:
        return self.stop_iterations.get(trial_id)


def stop_requested(flag) -> bool:
    """In a trial: whether the driver asked it to stop (flag: `find_stop_flag()`, may be None).

    A flag that has died (its node was lost) is read as "no stop requested": the trial goes on,
    and the driver's StopAtCheckpoint still ends Tune's loop on a later signal."""
    import ray
    from ray.exceptions import RayActorError

    if flag is None:
        return False
    try:
        return ray.get(flag.is_requested.remote())
    except RayActorError:
        return False


def record_stop(flag, trial_id: str, iteration: int) -> None:
    """In a trial that saw the request: tell the driver that its stop checkpoint holds `iteration`
    (before reporting it). A flag that has died is left alone, as in `stop_requested`."""
    import ray
    from ray.exceptions import RayActorError

    try:
        ray.get(flag.record_stop.remote(trial_id, iteration))
    except RayActorError:
        pass


def find_stop_flag():
    """The driver's STOP_ACTOR (asked by the trials and by `StopAtCheckpoint`), or None where the
    run has none (a Tuner run directly)."""
    import ray

    try:
        return ray.get_actor(STOP_ACTOR)
    except ValueError:
        return None


def wait_to_be_ended() -> None:
    """In a trial that has written its last checkpoint: wait until Tune ends the trial."""
    while True:
        time.sleep(1.0)


def end_tune_loop() -> None:
    """End Tune's loop (once per stop): Tune saves the experiment state and ends the trials.

    Does nothing where Tune has no SIGUSR1 handler (a Tuner run outside the main thread), where
    the signal would end the process instead."""
    if signal.getsignal(signal.SIGUSR1) in (signal.SIG_DFL, signal.SIG_IGN, None):
        return
    if not _request["ended"]:
        _request["ended"] = True
        signal.raise_signal(signal.SIGUSR1)  # Tune's handler: stop the loop, save the experiment state


class StopAtCheckpoint(tune.Callback):
    """Ends Tune's loop once every running trial has checkpointed after the stop request (module
    docstring, step 2). Its state is two sets of trial ids: it survives Tune's pickling of the run
    config."""

    def __init__(self):
        self._checkpointed: set[str] = set()
        self._started_late: set[str] = set()

    def on_trial_start(self, iteration, trials, trial, **info):
        if _request["time"] is not None:
            self._started_late.add(trial.trial_id)  # it will see the request before its first result

    def on_checkpoint(self, iteration, trials, trial, checkpoint, **info):
        """Counts only the stop checkpoint: a periodic one the trial wrote before it saw the
        request can reach the driver after it; ending the loop then would leave the stop
        checkpoint on disk, unlogged and untracked by Tune."""
        import ray

        if _request["time"] is None:
            return
        stopped_at = ray.get(find_stop_flag().stop_iteration.remote(trial.trial_id))
        if stopped_at is not None and trial.last_result["training_iteration"] >= stopped_at:
            self._checkpointed.add(trial.trial_id)

    def on_step_end(self, iteration, trials, **info):
        if _request["time"] is None:
            return
        waiting = [trial for trial in trials if trial.status == trial.RUNNING
                   and trial.trial_id not in self._checkpointed | self._started_late]
        if not waiting or time.monotonic() - _request["time"] > STOP_TIMEOUT_S:
            end_tune_loop()


@contextmanager
def stop_on_signals():
    """In the driver, around `tuner.fit()`: SIGINT and SIGTERM stop the trials at a checkpoint.

    Yields a dict whose "signum" is the signal received (None if none); needs Ray started. Outside
    the main thread (where Python cannot set signal handlers) it changes nothing.
    """
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    if threading.current_thread() is not threading.main_thread():
        yield {"signum": None}
        return

    _request.update(signum=None, time=None, ended=False)
    on_driver_node = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
    flag = ray.remote(num_cpus=0)(_StopFlag).options(name=STOP_ACTOR, scheduling_strategy=on_driver_node).remote()
    ray.get(flag.is_requested.remote())

    def handle(signum, frame):
        if _request["signum"] is not None:
            end_tune_loop()
            return
        _request.update(signum=signum, time=time.monotonic())
        print(f"\n{signal.Signals(signum).name}: every running trial writes a checkpoint and stops "
              f"(at most {STOP_TIMEOUT_S:.0f} s; send it again to stop at once)", file=sys.stderr, flush=True)
        flag.request.remote()

    previous = {signum: signal.signal(signum, handle) for signum in SIGNALS}
    disabled = os.environ.get("TUNE_DISABLE_SIGINT_HANDLER")
    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"
    try:
        yield _request
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if disabled is None:
            del os.environ["TUNE_DISABLE_SIGINT_HANDLER"]
        else:
            os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = disabled
        ray.kill(flag)
