"""Folding a removed unit's outgoing weights into a correlated partner.

When unit j's activations are close to `alpha * a_i + beta` for a unit i
that stays (DARN's correlated pairs), the next layer can read `a_i` in
place of `a_j`: j's outgoing weights are added to i's, times `alpha`, and
`beta` times j's outgoing weights go into the next layer's bias. If the fit
were exact, the network's function would not change at all; plain removal
instead loses j's contribution entirely. `alpha` and `beta` are the least-
squares fit over the data (`keras_darn.criteria.correlation.fold_coefficients`),
at the point where the next layer reads the unit (after BN, activation and
pooling).

Supported readers of a folded unit: `Dense`, `Conv1D`/`Conv2D`/`Conv3D`
(the bias part is exact for `padding="valid"`; with `"same"` the border
positions see padding zeros instead of `beta`), and `Flatten` followed by
a `Dense`.
"""

import keras
import numpy as np

from keras_darn.criteria.correlation import fold_coefficients


def _kernel_layer(layer):
    return isinstance(layer, (keras.layers.Dense, keras.layers.Conv1D, keras.layers.Conv2D,
                              keras.layers.Conv3D)) and not isinstance(
        layer, (keras.layers.Conv1DTranspose, keras.layers.Conv2DTranspose,
                keras.layers.Conv3DTranspose)
    )


def _readers(gate, consumers_of):
    """`(layer, spatial)`: layers reading the gate's channels, `spatial` for Flatten."""
    readers = []
    for node in gate.consumer_nodes:
        layer = node.operation
        if _kernel_layer(layer):
            readers.append((layer, False))
            continue
        if isinstance(layer, keras.layers.Flatten):
            following = consumers_of.get(id(node.outputs[0]), [])
            while len(following) == 1 and isinstance(
                following[0].operation, keras.layers.Dropout
            ):
                following = consumers_of.get(id(following[0].outputs[0]), [])
            if len(following) == 1 and isinstance(following[0].operation, keras.layers.Dense):
                readers.append((following[0].operation, True))
                continue
        raise ValueError(
            f"Cannot fold units of layer '{gate.layer.name}': they are read by layer "
            f"'{layer.name}' of type {type(layer).__name__}. Folding supports Dense, "
            "Conv1D/2D/3D and Flatten -> Dense readers; use plain removal (fold=False)."
        )
    return readers


def check_foldable(probed):
    """Raises `ValueError` if some probed unit's reader cannot take a fold."""
    consumers_of = _consumers(probed)
    for group in probed.groups:
        for gate in probed.gates_of(group.key):
            _readers(gate, consumers_of)


def _consumers(probed):
    consumers = {}
    for node in probed._order:
        for tensor in node.input_tensors:
            consumers.setdefault(id(tensor), []).append(node)
    return consumers


def fold_into_partners(probed, pruned_model, pairs, statistics):
    """Adds removed units' outgoing weights to their partners', in place.

    Args:
        probed: the `ProbedModel` of the model before removal.
        pruned_model: the model rebuilt without the removed units (its
            layers keep their names); modified in place.
        pairs: `{key: [(removed, partner, r), ...]}` in group order, as
            `keras_darn.criteria.correlated_pairs` returns them.
        statistics: `activation_statistics(probed, x, covariance=True,
            conv_mode="positions")` of the model before removal.

    Returns:
        A list of dicts `{"layer", "removed", "partner", "alpha", "beta"}`,
        one per folded unit and gate.

    Raises:
        ValueError: if a reader of a folded unit is not supported.
    """
    consumers_of = _consumers(probed)
    # A reader can lose output units in the same rebuild (DARN prunes every
    # layer at once); its old kernel is cut to the surviving outputs first.
    removed_outputs = {}
    for group in probed.groups:
        units = [r for r, _, _ in pairs.get(group.key, [])]
        for name in group.layers:
            removed_outputs[name] = group.indices(name)[np.asarray(units, int)]
    folds = []
    for group in probed.groups:
        group_pairs = pairs.get(group.key, [])
        if not group_pairs:
            continue
        removed_group = np.array(sorted(r for r, _, _ in group_pairs))
        for gate in probed.gates_of(group.key):
            order = group.indices(gate.layer.name)
            removed_channels = np.sort(order[removed_group])
            for reader, spatial in _readers(gate, consumers_of):
                old = {w.name: keras.ops.convert_to_numpy(w) for w in reader.weights}
                keep = np.setdiff1d(
                    np.arange(old["kernel"].shape[-1]), removed_outputs.get(reader.name, [])
                )
                old["kernel"] = old["kernel"][..., keep]
                target = pruned_model.get_layer(reader.name)
                new = {w.name: keras.ops.convert_to_numpy(w).copy() for w in target.weights}
                for removed, partner, _ in group_pairs:
                    j, i = int(order[removed]), int(order[partner])
                    alpha, beta = fold_coefficients(statistics[gate.name], j, i)
                    new_i = i - int(np.searchsorted(removed_channels, i))
                    _fold(old, new, j, new_i, alpha, beta, gate.width, spatial)
                    folds.append(
                        {"layer": gate.layer.name, "reader": reader.name, "removed": j,
                         "partner": i, "alpha": alpha, "beta": beta}
                    )
                for weight in target.weights:
                    if weight.name in ("kernel", "bias"):
                        weight.assign(new[weight.name])
    return folds


def _fold(old, new, j, new_i, alpha, beta, width, spatial):
    kernel = old["kernel"]
    if spatial:
        positions = kernel.shape[0] // width
        old_rows = kernel.reshape(positions, width, -1)[:, j, :]
        new_kernel = new["kernel"].reshape(positions, -1, kernel.shape[-1])
        new_kernel[:, new_i, :] += alpha * old_rows
        new["kernel"] = new_kernel.reshape(new["kernel"].shape)
        outgoing_sum = old_rows.sum(axis=0)
    else:
        new["kernel"][..., new_i, :] += alpha * kernel[..., j, :]
        outgoing_sum = kernel[..., j, :].reshape(-1, kernel.shape[-1]).sum(axis=0)
    if "bias" in new:
        new["bias"] += beta * outgoing_sum
