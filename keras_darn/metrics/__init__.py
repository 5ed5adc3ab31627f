"""Model size and cost: parameters, FLOPs and latency."""

from keras_darn.graph.flop_counters import ACTIVATION_FLOPS
from keras_darn.graph.flop_counters import register_activation_flops
from keras_darn.metrics.counts import count_flops
from keras_darn.metrics.counts import count_params
from keras_darn.metrics.counts import flops_by_layer
from keras_darn.metrics.counts import params_by_layer
from keras_darn.metrics.energy import ENERGY_COSTS_45NM
from keras_darn.metrics.energy import energy_by_layer
from keras_darn.metrics.energy import estimate_energy
from keras_darn.metrics.latency import measure_latency
