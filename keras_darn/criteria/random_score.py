"""Random unit scores: the baseline every criterion should beat."""

import numpy as np

from keras_darn.criteria.base import Criterion
from keras_darn.criteria.base import register_criterion


@register_criterion("random", "RandomScore")
class RandomScore(Criterion):
    """Scores every unit with a uniform random number in [0, 1).

    Each call draws new numbers from the criterion's own generator, so a
    seeded criterion gives the same sequence of scores run after run.

    Args:
        seed: seed of the generator. Defaults to `None`.
        batch_size: unused; kept for a uniform constructor. Defaults to
            `256`.

    Example:

    ```python
    scores = darn.criteria.RandomScore(seed=0)(model)
    ```
    """

    name = "random"
    needs_data = False

    def __init__(self, seed=None, batch_size=256):
        super().__init__(batch_size)
        self.seed = seed
        self._rng = np.random.default_rng(seed)

    def score(self, probed, x, y, strategy):
        return {group.key: self._rng.random(group.size) for group in probed.groups}

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}
