"""`PruningState`: the unit groups a pruning run works on and which of their units are live."""

from keras_darn.criteria.group_selection import find_group
from keras_darn.criteria.group_selection import live_units
from keras_darn.criteria.group_selection import select_groups
from keras_darn.criteria.probes import ProbedModel
from keras_darn.graph.nodes import functional_of
from keras_darn.graph.nodes import nodes_in_order


class PruningState:
    """The unit groups a pruning run works on and which of their units are live.

    Masked units are not live: what has been pruned is read from the
    model's unit masks, so the state follows the masks across epochs and
    restarts. Criteria that score from the weights alone
    (`reads_weights_only`) score this state directly; the others get a
    `ProbedModel` over the same groups (`probed()`), built the first time one
    is asked for, so the data-free default never builds one.

    Args:
        model: a built functional or Sequential `keras.Model`.
        layers: names of layers whose groups are pruned. Defaults to `None`
            (every resizable group of the top-level graph, and with `parts`
            the others too).
        parts: also take the groups outside the top-level graph (attention
            heads, layers of nested models), which only criteria that read
            weights can score. Defaults to `False`.

    Attributes:
        model: the model.
        groups: the `UnitGroup`s pruned (a method may narrow the list).
        live: `{group key: bool array}` of the units not masked off.
    """

    def __init__(self, model, layers=None, parts=False):
        self.model = model
        order = nodes_in_order(functional_of(model))
        self.groups, self._inner = select_groups(model, order, layers, parts)
        self._top = {node.operation.name: node.operation for node in order}
        self._probed = None
        self.live = {}
        self.refresh_from_masks()

    @property
    def keys(self):
        """Keys of the groups, in trace order."""
        return [g.key for g in self.groups]

    def group(self, key):
        """The `UnitGroup` with key (or member layer name) `key`."""
        return find_group(self.groups, key)

    def member_layer(self, name):
        """The member layer object called `name` (a `UnitPart` for a layer's part)."""
        return self._inner[name] if name in self._inner else self._top[name]

    def refresh_from_masks(self):
        """Reads which units are live from the model's masks."""
        self.live = live_units(self.model, self.groups, self.member_layer)

    def probed(self):
        """A `ProbedModel` over the same groups, its live units read from the masks."""
        if self._probed is None:
            self._probed = ProbedModel(self.model, layers=self.keys)
        self._probed.groups = [self._probed.group(key) for key in self.keys]
        self._probed.refresh_from_masks()
        return self._probed

    def scored_by(self, criterion):
        """What `criterion` scores: this state, or a `ProbedModel` when it reads outputs."""
        return self if criterion.reads_weights_only else self.probed()
