"""Timing helpers: medians, interleaved ratios, per-epoch wall clock."""

import statistics
import time


def median_seconds(function, repeats, warmup=0, setup=None):
    """The median wall-clock seconds of `function()` over `repeats` calls after `warmup` untimed ones.

    Args:
        function: the callable timed.
        repeats: timed calls.
        warmup: untimed calls first. Defaults to `0`.
        setup: callable run, untimed, before every timed call (e.g.
            `keras.backend.clear_session`). Defaults to `None`.

    Returns:
        The median, in seconds.
    """
    for _ in range(warmup):
        function()
    times = []
    for _ in range(repeats):
        if setup is not None:
            setup()
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def interleaved_ratio(candidate, baseline, rounds, warmup=1):
    """Times `candidate` against `baseline`, alternating them, so drifts of the machine hit both.

    Each round runs both (which goes first alternates) and divides the two
    times; the median of the per-round ratios is robust to a round that a
    background process slowed.

    Args:
        candidate: callable timed in the numerator.
        baseline: callable timed in the denominator.
        rounds: timed rounds (positive).
        warmup: untimed rounds first. Defaults to `1`.

    Returns:
        `{"ratio": median candidate/baseline, "candidate_s": [...],
        "baseline_s": [...], "ratios": [...]}`.

    Raises:
        ValueError: if `rounds` is not a positive integer.
    """
    if not isinstance(rounds, int) or rounds < 1:
        raise ValueError(f"Received an invalid value for `rounds`, expected a positive integer. "
                         f"Received: rounds={rounds!r}")
    for _ in range(warmup):
        candidate()
        baseline()
    timed = {"candidate": [], "baseline": []}
    for round_index in range(rounds):
        order = [("candidate", candidate), ("baseline", baseline)]
        for key, function in order if round_index % 2 == 0 else order[::-1]:
            start = time.perf_counter()
            function()
            timed[key].append(time.perf_counter() - start)
    ratios = [c / b for c, b in zip(timed["candidate"], timed["baseline"])]
    return {"ratio": statistics.median(ratios), "candidate_s": timed["candidate"],
            "baseline_s": timed["baseline"], "ratios": ratios}


def epoch_timer():
    """A Keras callback recording each epoch's wall-clock seconds in its `seconds` list.

    The time of an epoch includes the epoch-end work of the callbacks listed
    before it in `fit`'s `callbacks`.
    """
    import keras

    class EpochTimer(keras.callbacks.Callback):
        """Records each epoch's wall-clock seconds in `seconds` (reset when training begins)."""

        def __init__(self):
            super().__init__()
            self.seconds = []
            self._start = None

        def on_train_begin(self, logs=None):
            self.seconds = []

        def on_epoch_begin(self, epoch, logs=None):
            self._start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self._start)

    return EpochTimer()
