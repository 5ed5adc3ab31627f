"""Driver algorithms: loops of fit, decide, rebuild (re-exports only)."""

from keras_darn.algorithms.adaptive_rate import PruningResult
from keras_darn.algorithms.adaptive_rate import PruningStep
from keras_darn.algorithms.adaptive_rate import accuracy_evaluator
from keras_darn.algorithms.adaptive_rate import adaptive_pruning
from keras_darn.algorithms.adaptive_rate import fit_retrainer
from keras_darn.algorithms.adaptive_rate import static_pruning
from keras_darn.algorithms.connection_pruning import insert_auxiliary_layer
from keras_darn.algorithms.connection_pruning import mask_disconnected_units
from keras_darn.algorithms.connection_pruning import mean_abs_weight
from keras_darn.algorithms.connection_pruning import prune_connections
from keras_darn.algorithms.connection_pruning import remaining_weights
from keras_darn.algorithms.darn import correlation_thresholds
from keras_darn.algorithms.darn import dynamic_neuron_removal
from keras_darn.algorithms.darn import log_thresholds
from keras_darn.algorithms.darn import prune_by_threshold
from keras_darn.algorithms.folding import fold_into_partners
from keras_darn.algorithms.growth import grow_units
from keras_darn.algorithms.growth_training import GrowthResult
from keras_darn.algorithms.growth_training import fit_with_growth
from keras_darn.algorithms.nodedrop import attach_nodedrop
from keras_darn.algorithms.ranking import error_surface
from keras_darn.algorithms.ranking import iterative_reranking
from keras_darn.algorithms.ranking import prune_by_ranking
from keras_darn.algorithms.ranking import single_overall_ranking
from keras_darn.algorithms.unified import UnifiedResult
from keras_darn.algorithms.unified import darn_unified
