"""Which units a pruning step removes: global or uniform, within limits, to a count.

One step gets the criterion's scores, the units still live, and a goal: a
number of units (a `fraction` target) or a parameter / FLOP count. With
global pruning every live unit of every group competes in one ranking of
scores normalized by their group's mean (so that groups of different fan-in
compare, as Torch-Pruning's `global_pruning=True` with its mean
normalizer); uniform pruning removes the same fraction of every group, each
group's lowest-scored units first. Every group keeps at least
`min_units` and at most loses `max_ratio` of its original width, and its
width stays a multiple of `round_to` (rounded up). A parameter or FLOP goal
is met by bisection over the amount removed, each candidate counted on the
model the Rebuilder would build (`remove_units`), so the result is the
largest model along the ranking whose count is at or below the goal.
"""

import math
import numbers

import keras
import numpy as np

from keras_darn.metrics import count_flops
from keras_darn.metrics import count_params
from keras_darn.rebuild import remove_units


def check_options(round_to, max_ratio):
    """Validates `round_to` (int >= 1) and `max_ratio` (float or dict in (0, 1])."""
    if isinstance(round_to, bool) or not isinstance(round_to, numbers.Integral) or round_to < 1:
        raise ValueError(
            "Received an invalid value for `round_to`, expected a positive integer. "
            f"Received: round_to={round_to!r}"
        )
    values = max_ratio.values() if isinstance(max_ratio, dict) else [max_ratio]
    for value in values:
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 < value <= 1:
            raise ValueError(
                "Received an invalid value for `max_ratio`, expected a number in (0, 1] or a "
                f"dict of them by layer name. Received: max_ratio={max_ratio!r}"
            )


class Allocation:
    """How a step spreads its removals over the groups, and their limits.

    Args:
        global_pruning: one ranking over all groups (`True`) or the same
            fraction of every group (`False`).
        round_to: widths stay a multiple of this (rounded up; a group whose
            width is below it is left alone).
        max_ratio: the largest fraction of a group's original width that
            may go: a float, a dict `{layer_name: float}` (others: 1), or
            `None` (1).
        target: the `Target` (for `min_units`).
    """

    def __init__(self, global_pruning, round_to, max_ratio, target):
        check_options(round_to, max_ratio)
        self.global_pruning = bool(global_pruning)
        self.round_to = int(round_to)
        self.max_ratio = max_ratio
        self.target = target

    def _max_ratio_of(self, group):
        if isinstance(self.max_ratio, dict):
            values = [self.max_ratio[n] for n in group.layers if n in self.max_ratio]
            return min(values) if values else 1.0
        return 1.0 if self.max_ratio is None else float(self.max_ratio)

    def min_width(self, group, original_size):
        """The narrowest width the group may reach."""
        floor = max(self.target.min_units_of(n) for n in group.layers)
        floor = max(floor, original_size - math.floor(self._max_ratio_of(group) * original_size
                                                      + 1e-9))
        return max(1, min(floor, original_size))

    def _rounded_keep(self, keep, live, minimum):
        keep = max(keep, minimum)
        keep = int(math.ceil(keep / self.round_to) * self.round_to)
        return min(keep, live)

    def counts(self, groups, live, amount, order=None, sizes=None):
        """Units each group loses at a candidate amount (an int for global, a fraction else).

        Args:
            groups: the probed groups.
            live: `{key: bool array}` of live units.
            amount: global: how many units of `order` to take; uniform: the
                fraction of each group's original width to have removed.
            order: global: `[(key, unit)]`, lowest normalized score first.
            sizes: `{key: original width}`.

        Returns:
            `{key: number of live units to remove}`.
        """
        wanted = {}
        if self.global_pruning:
            taken = {g.key: 0 for g in groups}
            room = {
                g.key: int(live[g.key].sum()) - self.min_width(g, sizes[g.key]) for g in groups
            }
            left = int(amount)
            for key, _ in order:
                if left <= 0:
                    break
                if taken[key] < room[key]:
                    taken[key] += 1
                    left -= 1
            wanted = taken
        else:
            for g in groups:
                off = sizes[g.key] - int(live[g.key].sum())
                wanted[g.key] = max(0, math.ceil(amount * sizes[g.key] - 1e-9) - off)
        result = {}
        for g in groups:
            count = int(live[g.key].sum())
            if not wanted[g.key]:
                result[g.key] = 0
                continue
            keep = self._rounded_keep(count - wanted[g.key], count,
                                      self.min_width(g, sizes[g.key]))
            result[g.key] = max(0, count - keep)
        return result


def normalized(scores, live):
    """Scores divided by the mean of their group's live, finite scores."""
    result = {}
    for key, values in scores.items():
        values = np.asarray(values, dtype=np.float64)
        usable = live[key] & np.isfinite(values)
        mean = np.mean(np.abs(values[usable])) if usable.any() else 0.0
        result[key] = values / mean if mean > 0 else values
    return result


def global_order(scores, live):
    """`[(key, unit)]` of every live, scored unit, lowest normalized score first."""
    entries = []
    for key, values in normalized(scores, live).items():
        for unit in np.flatnonzero(live[key] & np.isfinite(values)):
            entries.append((float(values[unit]), key, int(unit)))
    entries.sort(key=lambda e: e[0])
    return [(key, unit) for _, key, unit in entries]


def lowest_units(scores, live, counts):
    """`{key: sorted unit indices}`: the `counts[key]` lowest-scored live units."""
    plan = {}
    for key, count in counts.items():
        if count <= 0:
            continue
        values = np.asarray(scores[key], dtype=np.float64)
        candidates = np.flatnonzero(live[key] & np.isfinite(values))
        order = candidates[np.argsort(values[candidates], kind="stable")]
        if len(order) < count:  # unscored live units go last, by position
            rest = np.setdiff1d(np.flatnonzero(live[key]), order)
            order = np.concatenate([order, rest])
        plan[key] = np.sort(order[:count])
    return plan


def layer_plan(probed, plan):
    """`{layer_name: [indices]}` for `Rebuilder.remove` / masks, from a plan in group order."""
    return {key: probed.group(key).layer_indices(units).tolist()
            for key, units in plan.items() if len(units)}


def one_direction(probed, group):
    """Whether a group holds one direction of a `Bidirectional` layer.

    Both directions must keep equal widths: the same fraction of every group
    keeps them equal, one global ranking does not.
    """
    for name in group.layers:
        layer = probed.member_layer(name)
        owner = getattr(layer, "owner", layer)  # a part names its layer
        if isinstance(owner, keras.layers.Bidirectional):
            return True
    return False


def counter_of(target):
    """`(name, goal, counting function)` of a parameter or FLOP target, else `None`."""
    if target.params is not None:
        return "params", target.params, count_params
    if target.flops is not None:
        return "flops", target.flops, count_flops
    return None


def count_after(probed, new_units, counter):
    """The count of the model rebuilt without its off units and `new_units`."""
    plan = {}
    for group in probed.groups:
        off = ~probed.live[group.key]
        if group.key in new_units:
            off = off.copy()
            off[new_units[group.key]] = True
        if off.any():
            plan[group.key] = group.layer_indices(np.flatnonzero(off)).tolist()
    if not plan:
        return counter(probed.model)
    return counter(remove_units(probed.model, plan, compile=False))


def check_reachable(probed, allocation, target, sizes, original):
    """Raises when the target's count is below what the limits allow."""
    counting = counter_of(target)
    if counting is None:
        return
    name, goal, counter = counting
    goal = goal * original if isinstance(goal, float) else goal
    smallest = {}
    for g in probed.groups:
        count = int(probed.live[g.key].sum())
        keep = allocation._rounded_keep(0, count, allocation.min_width(g, sizes[g.key]))
        if count - keep > 0:
            smallest[g.key] = np.flatnonzero(probed.live[g.key])[: count - keep]
    reached = count_after(probed, smallest, counter)
    if reached > goal:
        raise ValueError(
            f"The target {name}={goal if isinstance(goal, int) else round(goal)!r} cannot be "
            "reached by removing units of the resizable groups: with every group at its "
            f"minimum width (min_units, max_ratio, round_to) the model still has {reached:,} "
            f"{name} (now {original:,})."
        )


def select(probed, scores, allocation, target, amount, sizes, original):
    """The units one step removes, `{key: sorted unit indices in group order}`.

    Args:
        probed: the `ProbedModel` (its `live` marks the units still in).
        scores: `{key: array}` from the criterion.
        allocation: an `Allocation`.
        target: the `Target`.
        amount: the schedule's amount, the share of the way to the target
            reached after this step, in `(0, 1]`. A count target is reached
            geometrically: after a step of amount a the model has
            `original * (goal / original) ** a`.
        sizes: `{key: original width}`.
        original: the unpruned model's count (parameters or FLOPs).

    Returns:
        The plan, possibly empty.
    """
    live = probed.live
    groups = probed.groups
    order = global_order(scores, live) if allocation.global_pruning else None

    def plan_at(value):
        counts = allocation.counts(groups, live, value, order, sizes)
        return lowest_units(scores, live, counts)

    counting = counter_of(target)
    if counting is None:  # a fraction of the units
        fraction = target.fraction * amount
        if not allocation.global_pruning:
            return plan_at(fraction)
        total = sum(sizes.values())
        off = sum(sizes[g.key] - int(live[g.key].sum()) for g in groups)
        return plan_at(max(0, math.ceil(fraction * total - 1e-9) - off))
    _, goal, counter = counting
    goal = goal * original if isinstance(goal, float) else goal
    goal = original * (goal / original) ** amount if amount < 1 else goal
    counts = {}

    def count_at(value):
        plan = plan_at(int(value) if allocation.global_pruning else value)
        signature = tuple(sorted((key, len(units)) for key, units in plan.items()))
        if signature not in counts:
            counts[signature] = count_after(probed, plan, counter)
        return counts[signature]

    if count_at(0) <= goal:
        return {}
    high = len(order) if allocation.global_pruning else 1.0
    value = _smallest_reaching(count_at, high, goal, allocation.global_pruning)
    return plan_at(int(value) if allocation.global_pruning else value)


def _smallest_reaching(count_at, high, goal, integer):
    """The smallest amount in `(0, high]` whose count is at or below `goal`.

    The count falls as the amount grows. Secant guesses between the
    bracket's counts alternate with halvings, so the bracket at least halves
    every two steps while a smooth count is found in a few; each distinct
    plan is counted once (counting rebuilds the model).
    """
    low, low_count = 0, count_at(0)
    high_count = count_at(high)
    for step in range(200):
        if (high - low <= 1) if integer else (high - low < 1e-6):
            break
        middle = (low + high) / 2
        if step % 2 == 0 and low_count != high_count:
            guess = low + (low_count - goal) / (low_count - high_count) * (high - low)
            middle = min(max(guess, low + (high - low) / 64), high - (high - low) / 64)
        if integer:
            middle = min(max(int(round(middle)), low + 1), high - 1)
        count = count_at(middle)
        if count <= goal:
            high, high_count = middle, count
        else:
            low, low_count = middle, count
    return high
