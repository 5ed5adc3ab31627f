"""Structured pruning by an importance criterion (re-exports only).

During `fit`, `CriterionPruning` masks the lowest-scored units on a
schedule (activation statistics of Gandhi & Bandaru, *Dynamically Adding and
Removing Neurons from Neural Networks*; Taylor
expansions; brute force and ranking as in *The Incredible Shrinking Neural
Network*); between fits, `prune_by_ranking` removes units one at a time.
Registered names: see `CriterionMethod`.
"""

from keras_darn.methods.pruning.callback import CriterionPruning
from keras_darn.methods.pruning.method import CriterionMethod
from keras_darn.methods.pruning.ranking import error_surface
from keras_darn.methods.pruning.ranking import prune_by_ranking
