"""Export keras_darn models: TensorFlow SavedModel and TFLite (LiteRT)."""

from keras_darn.export.saved_model import export_saved_model
from keras_darn.export.tflite import QUANTIZATION_MODES
from keras_darn.export.tflite import save_tflite
from keras_darn.export.tflite import tflite_interpreter
from keras_darn.export.tflite import tflite_predict
from keras_darn.export.tflite import to_tflite
