"""The Rebuilder: one new model from a queue of unit changes.

Changes are queued (`remove`, `add`, `remove_dead`) and applied together by
`build()`, which traces the planned widths through the graph, clones the
model with resized layers and copies every surviving weight. The original
model is never modified; a failing plan raises before anything is built.
"""

import difflib

import keras
import numpy as np

from keras_darn.graph import grouped_conv
from keras_darn.graph import registry
from keras_darn.graph.channels import Channels
from keras_darn.graph.unit_graph import UnitGraph
from keras_darn.graph.unit_graph import channel_width
from keras_darn.graph.unit_graph import functional_of
from keras_darn.graph.unit_graph import walk
from keras_darn.graph.nodes import leaf_layers
from keras_darn.graph.unit_axes import UnitPart
from keras_darn.rebuild import weight_transfer
from keras_darn.rebuild.layer_plan import clone_resized
from keras_darn.rebuild.layer_plan import copy_weights
from keras_darn.rebuild.layer_plan import make_plan
from keras_darn.rebuild.layout import LayoutTrace
from keras_darn.rebuild.plan_checks import check_indices
from keras_darn.rebuild.plan_checks import check_plan
from keras_darn.rebuild.layout import warn_inexact_growth
from keras_darn.validation import check_one_of


class Rebuilder:
    """Queues unit changes to a Keras model and builds the changed model.

    Args:
        model: a built functional or Sequential `keras.Model`. It is never
            modified.
        seed: seed for the random draws of new units. Defaults to `None`.

    Raises:
        ValueError: for subclassed or unbuilt models.

    Example:

    ```python
    rebuilder = darn.Rebuilder(model)
    rebuilder.remove({"dense": [0, 3]})
    rebuilder.add({"conv": 8}, init="zeros_out")
    new_model = rebuilder.build()
    ```
    """

    def __init__(self, model, seed=None):
        self.model = model
        self.graph = UnitGraph(model, with_constants=True)
        self._rng = np.random.default_rng(seed)
        self._removed = set()
        self._additions = []  # (layer key, new ids, source roots, init, noise)
        self._next_id = len(self.graph._uf.parent)
        self.variable_map = []

    # ---- Queueing -------------------------------------------------------
    def remove(self, plan):
        """Queues removal of units, given as `{layer_name: [indices]}`.

        Every unit coupled to a named one (e.g. across an `Add`) goes too.

        Raises:
            ValueError: unknown layer, fixed units, bad or repeated indices.
        """
        for name, indices in check_plan(plan, "plan").items():
            layer, space = self._resizable(name)
            indices = check_indices(indices, len(space), name)
            for root in self.graph.roots(space)[indices]:
                self._check_not_fixed(root, name)
                self._removed.add(int(root))
        return self

    def remove_dead(self):
        """Queues removal of every unit that is provably dead.

        A unit is dead when, at every layer that consumes it, its channel
        holds a constant that the consumer can absorb exactly into its bias
        (any constant for `Dense` and valid-padded convolutions, only 0
        otherwise). Masked-off units of our prunable layers output 0.
        """
        self._removed |= self.dead_roots()
        return self

    def dead_roots(self):
        """Roots (coupled-unit ids) of the provably dead units."""
        bad = set()
        for consumer in self.graph.consumers:
            roots = self.graph.roots(consumer.channels)
            constants = consumer.constants
            # A part's input (e.g. the value input of an attention layer) is
            # recorded with the layer's first input's constants: never fold it.
            if constants is None or isinstance(consumer.layer, UnitPart) or len(constants) != len(roots):
                bad.update(int(r) for r in roots)
                continue
            foldable = np.isfinite(constants) & (
                (constants == 0) | _can_absorb_constant(consumer.layer)
            )
            bad.update(int(r) for r in roots[~foldable])
        # Units of a layer's parts (attention heads, ...) are read inside the
        # layer, not by a traced consumer: they are never dead.
        for key, channels in self.graph.spaces.items():
            if isinstance(self.graph.layer_of_space(key), UnitPart):
                bad.update(int(r) for r in self.graph.roots(channels))
        dead = set()
        for channels in self.graph.spaces.values():
            roots = [int(r) for r in self.graph.roots(channels)]
            dead.update(r for r in roots if r not in bad and self.graph.fixed_reason(r) is None)
        for channels in self.graph.spaces.values():
            roots = [int(r) for r in self.graph.roots(channels)]
            if all(r in dead for r in roots):
                # A layer needs at least one unit: keep its first (dead) one.
                dead.discard(roots[0])
        return dead

    def add(self, plan, init="zeros_out", sources=None, noise=0.0):
        """Queues new units, given as `{layer_name: count}`.

        New units go after the layer's last unit; coupled layers get them at
        the matching place. Where the layer's channels are coupled in sets
        (the groups of a grouped convolution it makes or feeds), each new
        unit is one new channel at the end of every set, so the count of
        channels must be a multiple of the number of sets.

        Args:
            plan: `{layer_name: number_of_new_units}`.
            init: "zeros_out" (zero outgoing weights: same outputs),
                "net2net" (copies whose outgoing weights are shared with
                their source: same outputs when `noise=0`) or "random".
                Defaults to "zeros_out".
            sources: `{layer_name: [unit indices to copy]}` for "net2net"
                (one per new unit: per new channel of every set, where
                channels come in sets); by default sources are drawn at
                random. Defaults to `None`.
            noise: relative noise added to Net2WiderNet copies' incoming
                weights. Defaults to `0.0`.

        Raises:
            ValueError: bad `init`, counts (a count that would make a grouped
                convolution's groups unequal included), sources, or fixed
                units.
        """
        check_one_of(init, "init", weight_transfer.INITS)
        if noise < 0:
            raise ValueError(f"Expected `noise` >= 0. Received: noise={noise}")
        sources = sources or {}
        for name, count in check_plan(plan, "plan").items():
            layer, space = self._resizable(name)
            if not isinstance(count, (int, np.integer)) or isinstance(count, bool) or count < 1:
                raise ValueError(
                    f"Expected a positive number of units to add to layer '{name}'. "
                    f"Received: {count!r}"
                )
            roots = self.graph.roots(space)
            self._check_not_fixed(int(roots[-1]), name)
            units = self._new_unit_count(name, roots, int(count))
            source_roots = []
            if init == "net2net":
                chosen = sources.get(name)
                if chosen is None:
                    chosen = self._rng.choice(len(space), size=units, replace=units > len(space))
                chosen = np.asarray(chosen, dtype=np.int64)
                if len(chosen) != units or chosen.min() < 0 or chosen.max() >= len(space):
                    raise ValueError(
                        f"Expected {units} source indices in [0, {len(space)}) for layer "
                        f"'{name}'. Received: sources={sources.get(name)!r}"
                    )
                source_roots = [int(roots[i]) for i in chosen]
            new_ids = list(range(self._next_id, self._next_id + units))
            self._next_id += units
            self._additions.append((id(layer), new_ids, source_roots, init, float(noise)))
        return self

    # ---- Building -------------------------------------------------------
    def build(self, keep_masks=True):
        """Builds the changed model; the original is untouched.

        Args:
            keep_masks: keep our prunable layers (with their masks); when
                False they come out as plain `Dense`/`Conv2D`, with masked
                connections zeroed. Defaults to `True`.

        Returns:
            A new `keras.Model`. `self.variable_map` then lists
            `(old_variable, new_variable, transform)` for every weight, where
            `transform(array, fill=None)` maps old values to the new layout.

        Raises:
            ValueError: if the plan leaves a layer without units or joins
                different units at a merge.
        """
        layout, transfers = self.layer_plans()
        warn_inexact_growth(layout)
        new_model, clones = self._clone(layout, transfers, keep_masks)
        self.variable_map = []
        for layer in leaf_layers(self.model):
            clone = clones.get(id(layer))
            if clone is None or not layer.weights:
                continue
            self.variable_map.extend(copy_weights(layer, clone, transfers.get(id(layer))))
        return new_model

    def _clone(self, layout, transfers, keep_masks):
        """`(new model, {id(old layer): new layer})` at the planned widths, weights not copied."""
        clones = {}

        def clone_layer(layer):
            if isinstance(layer, keras.Model):
                inputs = [
                    keras.Input(tuple(t.shape[1:-1]) + (len(c),), dtype=t.dtype)
                    for t, c in zip(layer.inputs, layout.model_inputs[id(layer)])
                ]
                clone = keras.models.clone_model(
                    layer, input_tensors=inputs if len(inputs) > 1 else inputs[0],
                    clone_function=clone_layer,
                )
            else:
                clone = clone_resized(layer, transfers.get(id(layer)), keep_masks)
            clones[id(layer)] = clone
            return clone

        return keras.models.clone_model(self.model, clone_function=clone_layer), clones

    def roots_of(self, name, indices=None):
        """The roots (coupled-unit ids) of units `indices` of layer `name` (all by default)."""
        _, space = self._resizable(name)
        roots = self.graph.roots(space)
        return roots if indices is None else roots[np.asarray(indices, dtype=np.int64)]

    def layer_plans(self):
        """The queued changes, traced: `(LayoutTrace, {id(layer): LayerPlan})`.

        What `build()` builds from; nothing is built. The layout records the
        channels every layer reads (`layout.inputs`), a plan how each
        layer's weights are sliced (`LayerPlan.transform`).
        """
        new_spaces = self._plan_spaces()
        layout = LayoutTrace(new_spaces)
        functional = functional_of(self.model)
        walk(functional, layout, [Channels(np.full(channel_width(t), -1)) for t in functional.inputs])
        return layout, self._weight_plans(layout, new_spaces)

    @property
    def adds_units(self):
        """Whether units were queued for addition."""
        return bool(self._additions)

    def _plan_spaces(self):
        # New units follow the last surviving unit of the layer they were
        # added to; coupled layers get them after the same (coupled) unit.
        anchors = []
        for key, new_ids, source_roots, _, _ in self._additions:
            kept = [int(r) for r in self.graph.roots(self.graph.spaces[key]) if int(r) not in self._removed]
            anchors.append((kept[-1] if kept else None, new_ids, source_roots))
        new_spaces = {}
        for key, channels in self.graph.spaces.items():
            roots = self.graph.roots(channels)
            keep = np.array([int(r) not in self._removed for r in roots], dtype=bool)
            if not keep.any() and len(roots):
                layer = self.graph.layer_of_space(key)
                raise ValueError(
                    f"The plan would leave layer '{layer.name}' with zero units; "
                    "keep at least one unit of every layer."
                )
            ids = list(channels.ids[keep])
            origin = list(np.flatnonzero(keep))
            source = [-1] * len(ids)
            kept_roots = list(roots[keep])
            for anchor, new_ids, source_roots in anchors:
                where = [i for i, r in enumerate(kept_roots) if r == anchor]
                # Where the anchor repeats (the groups of a grouped
                # convolution), every occurrence gets the new units, copying
                # the source's occurrence in the same place; last first, so
                # earlier positions stay put.
                for occurrence in reversed(range(len(where))):
                    at = where[occurrence] + 1
                    positions = []
                    for s in source_roots:
                        matches = np.flatnonzero(roots == s)
                        if not len(matches):
                            raise ValueError(
                                f"Cannot copy a source unit into layer "
                                f"'{self.graph.layer_of_space(key).name}': the source is not "
                                "coupled to it."
                            )
                        same_place = len(matches) == len(where)
                        positions.append(int(matches[occurrence if same_place else -1]))
                    positions = positions or [-1] * len(new_ids)
                    ids[at:at] = new_ids
                    origin[at:at] = [-1] * len(new_ids)
                    source[at:at] = positions
                    kept_roots[at:at] = [None] * len(new_ids)
            new_spaces[key] = Channels(ids, origin, source)
        return new_spaces

    def _weight_plans(self, layout, new_spaces):
        growth = {}
        for _, new_ids, _, init, noise in self._additions:
            growth.update({unit: (init, noise) for unit in new_ids})
        constants = {}
        for consumer in self.graph.consumers:
            constants.setdefault(id(consumer.layer), consumer.constants)
        return {
            key: make_plan(layer, layout, new_spaces, constants, growth, self._rng)
            for key, layer in layout.layers.items()
        }

    # ---- Validation helpers ---------------------------------------------
    def _resizable(self, name):
        layer = self.graph.layers.get(name)
        if layer is None:
            layer = self._parts().get(name)
        if layer is None:
            names = list(self.graph.layers) + list(self._parts())
            close = difflib.get_close_matches(name, names, n=3)
            hint = f" Did you mean {close}?" if close else ""
            raise ValueError(f"No layer named '{name}' in model '{self.model.name}'.{hint}")
        space = self.graph.spaces.get(id(layer))
        if space is None:
            raise ValueError(
                f"Layer '{name}' of type {type(layer).__name__} has no resizable units of "
                "its own; name the layer that produces them (e.g. the Dense or Conv2D "
                "before it)."
            )
        return layer, space

    def _parts(self):
        """`{name: UnitPart}` of the traced parts with units of their own
        (`"<layer>/<part>"`, and with nested models' prefixes too)."""
        parts = [p for p in self.graph.resizable_layers() if isinstance(p, UnitPart)]
        names = {part.name: part for part in parts}
        for layer_name, layer in self.graph.layers.items():
            for part in parts:
                if part.owner is layer:
                    names.setdefault(f"{layer_name}/{part.key}", part)
        return names

    def _new_unit_count(self, name, roots, count):
        """New units for `count` new channels of layer `name`.

        Where a layer's channels are coupled in sets (the groups of a
        grouped convolution it makes or feeds), one new unit is one new
        channel in every set, so `count` must be a multiple of their number.
        """
        repeats = int(np.count_nonzero(roots == roots[-1]))
        if count % repeats == 0:
            return count // repeats
        convs = grouped_conv.grouped_convs_of(self.graph, int(roots[-1]))
        convs = ", ".join(f"'{c}'" for c in convs)
        where = (
            f"the groups of grouped convolution {convs} ({repeats} sets)" if convs
            else f"{repeats} coupled sets"
        )
        raise ValueError(
            f"Cannot add {count} units to layer '{name}': its channels are split into "
            f"{where}, which must stay equal, so a new unit is one new channel in every "
            f"set: the count must be a multiple of {repeats}. Received: {count}"
        )

    def _check_not_fixed(self, root, name):
        reason = self.graph.fixed_reason(root)
        if reason is not None:
            raise ValueError(f"Units of layer '{name}' cannot change: {reason}.")


def _can_absorb_constant(layer):
    handler = registry.get_handler(layer)
    return bool(getattr(handler, "fold_weight", None)) and getattr(layer, "padding", "valid") == "valid"
