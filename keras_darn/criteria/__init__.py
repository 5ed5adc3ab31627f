"""Importance criteria: one score per unit, computed on data (re-exports only)."""

from keras_darn.criteria.activation_statistics import ActivationL1
from keras_darn.criteria.activation_statistics import ActivationVariance
from keras_darn.criteria.activation_statistics import activation_statistics
from keras_darn.criteria.base import Criterion
from keras_darn.criteria.base import criterion_names as names
from keras_darn.criteria.base import get
from keras_darn.criteria.base import register_criterion
from keras_darn.criteria.base import serialize
from keras_darn.criteria.brute_force import BruteForce
from keras_darn.criteria.brute_force import brute_force_effects
from keras_darn.criteria.correlation import ActivationCorrelation
from keras_darn.criteria.correlation import correlated_pairs
from keras_darn.criteria.group_magnitude import BatchNormScale
from keras_darn.criteria.group_magnitude import GroupMagnitude
from keras_darn.criteria.group_magnitude import GroupMagnitudeL1
from keras_darn.criteria.probes import ProbedModel
from keras_darn.criteria.random_score import RandomScore
from keras_darn.criteria.taylor import TaylorFirstOrder
from keras_darn.criteria.taylor import TaylorSecondOrder
from keras_darn.criteria.taylor import taylor_terms
from keras_darn.criteria.weight_l1 import WeightL1
