"""Connection pruning with a static and an adaptive pruning rate (re-exports only).

Esfandiarpoor, Hajabdollahi, Shirani, Samavi & Karimi, *Simplified neural
network based on auxiliary layer and adaptive pruning rate*, on the
connection pruning of Han, Pool, Tran & Dally, *Learning both weights and
connections for efficient neural networks*: the smallest connections are
switched off through kernel masks, the network retrained, and this repeated
while the accuracy holds, at a static rate (`"weight_magnitude"`,
`WeightMagnitude`) or at the paper's adaptive rate (`"adaptive_rate"`,
`AdaptiveRate`, Algorithm 1); units that lose all their connections are
then removed by `keras_darn.shrink`, and an auxiliary layer can be inserted
to prune further. Run them with `darn.resize(model, "adaptive_rate",
darn.Target(max_accuracy_drop=0.01), x=, y=, validation_data=)`.
"""

from keras_darn.methods.connection.adaptive_rate import adaptive_pruning
from keras_darn.methods.connection.adaptive_rate import static_pruning
from keras_darn.methods.connection.auxiliary import insert_auxiliary_layer
from keras_darn.methods.connection.evaluation import accuracy_evaluator
from keras_darn.methods.connection.evaluation import fit_retrainer
from keras_darn.methods.connection.method import AdaptiveRate
from keras_darn.methods.connection.method import WeightMagnitude
from keras_darn.methods.connection.pruning import prune_connections
from keras_darn.methods.connection.pruning import remaining_weights
from keras_darn.methods.connection.structure import dead_units
from keras_darn.methods.connection.structure import mask_disconnected_units
