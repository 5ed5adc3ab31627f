"""`Result`: the model a method hands back, what happened, and the figures."""

from keras_darn.graph import unit_groups
from keras_darn.metrics import count_flops
from keras_darn.metrics import count_params


def figures(model):
    """`{"params", "flops", "widths"}` of a model; `widths` maps each
    resizable group (by its first layer) to its width."""
    try:
        groups = unit_groups(model)
    except ValueError:
        groups = []
    try:
        flops = count_flops(model)
    except ValueError:
        flops = None
    return {
        "params": count_params(model),
        "flops": flops,
        "widths": {group.layers[0]: group.size for group in groups if group.resizable},
    }


class Result:
    """What a method hands back: the model, its events, before/after figures.

    Attributes:
        model: the final, plain Keras model (not compiled unless the method
            says so).
        events: a list of dicts, one per change, each with at least
            `"step"` (the epoch or driver step), `"action"` (`"remove"`,
            `"grow"`, ...) and `"layer"`; methods add their own fields.
        before: `{"params", "flops", "widths"}` of the model given.
        after: the same for `model`.
        history: what the method recorded while it ran, a dict (its keys
            are the method's; the Keras `History.history` for methods that
            train).
        method: the name of the method.
        target: the `Target` the method aimed at, or `None`.
        notes: `{what: why}` the method could not do as asked (e.g. unit
            groups left out of pruning during fit, and why); shown by
            `summary()`.

    Example:

    ```python
    print(result.summary())
    small = result.model
    ```
    """

    def __init__(self, model, events, before, after=None, history=None, method=None,
                 target=None, notes=None):
        self.model = model
        self.events = list(events)
        self.before = before
        self.after = after if after is not None else figures(model)
        self.history = dict(history or {})
        self.method = method
        self.target = target
        self.notes = dict(notes or {})

    def target_check(self):
        """How the model compares with a `params` or `flops` target.

        Returns:
            `None` without such a target, else a dict `{"amount", "goal",
            "reached", "met"}`: `met` is true when the count is at or below
            the goal and within 2 % of it.
        """
        target = self.target
        for amount in ("params", "flops"):
            goal = getattr(target, amount, None) if target is not None else None
            if goal is None or self.before.get(amount) is None or self.after.get(amount) is None:
                continue
            goal = goal * self.before[amount] if isinstance(goal, float) else goal
            reached = self.after[amount]
            return {"amount": amount, "goal": goal, "reached": reached,
                    "met": 0.98 * goal <= reached <= goal}
        return None

    def summary(self):
        """A markdown table of the figures before and after, one row each."""
        rows = [("parameters", self.before["params"], self.after["params"])]
        if self.before.get("flops") is not None and self.after.get("flops") is not None:
            rows.append(("FLOPs per example", self.before["flops"], self.after["flops"]))
        for name, width in self.before["widths"].items():
            rows.append((f"width of '{name}'", width, self.after["widths"].get(name, "-")))
        for name, width in self.after["widths"].items():
            if name not in self.before["widths"]:
                rows.append((f"width of '{name}'", "-", width))
        lines = [
            f"{self.method or 'Result'}: {len(self.events)} events",
            "",
            "| | before | after | ratio |",
            "|---|---|---|---|",
        ]
        for label, before, after in rows:
            ratio = f"{before / after:.2f}x" if _positive(before) and _positive(after) else ""
            lines.append(f"| {label} | {_format(before)} | {_format(after)} | {ratio} |")
        check = self.target_check()
        if check is not None:
            share = check["reached"] / self.before[check["amount"]]
            verdict = "met" if check["met"] else (
                "MISSED: above the target" if check["reached"] > check["goal"]
                else "MISSED: more than 2 % below the target")
            lines += ["", f"Target {check['amount']} <= {round(check['goal']):,}: reached "
                          f"{check['reached']:,} ({share:.4f} of before), {verdict}."]
        if self.notes:
            lines += ["", "Not done as asked:"]
            lines += [f"- '{what}': {why}" for what, why in self.notes.items()]
        return "\n".join(lines)

    def __repr__(self):
        return (
            f"Result(method={self.method!r}, events={len(self.events)}, "
            f"params={self.before['params']} -> {self.after['params']})"
        )


def _positive(value):
    return isinstance(value, (int, float)) and value > 0


def _format(value):
    return f"{value:,}" if isinstance(value, int) else str(value)
