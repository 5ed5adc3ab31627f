"""Distillation from the unpruned model: how a pruned model recovers what it lost.

`darn.Distillation` says which teacher a pruned model (the student) learns
from, at what temperature and with what weight; `darn.prepare(...,
distill=...)` hands back a `keras.distillation.Distiller` of the prepared
model to compile and fit, and `darn.resize(..., distill=...)` fine-tunes
through one between its pruning steps. The loss is Keras' own:

    loss = (1 - weight) * student loss (the compiled loss, on the labels)
           + weight * T^2 * KL(softmax(teacher / T) || softmax(student / T))

with `T` the temperature (Hinton, Vinyals and Dean, *Distilling the
Knowledge in a Neural Network*, 2015). A model whose output layer applies a
softmax gives probabilities, not logits: their logarithms are used, which
is the same distribution at every temperature. Regularization losses of the
student's layers (NodeDrop's penalty, say) are added as in `model.fit`.
"""

import numbers

import keras

from keras_darn.graph.nodes import producer_of
from keras_darn.rebuild import Rebuilder


class Distillation:
    """A teacher, a temperature and a weight for distilling into a pruned model.

    Args:
        teacher: the model to learn from (frozen while the student trains;
            same inputs and outputs as the student). Defaults to `None`:
            the model given to `prepare` / `resize`, as it was given (a
            copy; the model itself is not changed).
        temperature: the softmax temperature `T`, > 0. Defaults to `4.0`.
        weight: the share of the distillation loss in the total loss, in
            `[0, 1]`; the student's own loss gets `1 - weight`. Defaults
            to `0.5`.

    Example:

    ```python
    model, callback = darn.prepare(model, "magnitude", darn.Target(fraction=0.5),
                                   distill=darn.Distillation(temperature=2.0))
    model.compile("adam", "sparse_categorical_crossentropy")  # a Distiller
    model.fit(x, y, epochs=3, callbacks=[callback])
    small = callback.finish().model                            # the plain student
    ```
    """

    def __init__(self, teacher=None, temperature=4.0, weight=0.5):
        if teacher is not None and not isinstance(teacher, keras.Model):
            raise ValueError(
                "Received an invalid value for `teacher`, expected a keras.Model or None. "
                f"Received: teacher of type {type(teacher).__name__}"
            )
        if isinstance(temperature, bool) or not isinstance(temperature, numbers.Real) or (
            temperature <= 0
        ):
            raise ValueError(
                "Received an invalid value for `temperature`, expected a number > 0. "
                f"Received: temperature={temperature!r}"
            )
        if isinstance(weight, bool) or not isinstance(weight, numbers.Real) or not 0 <= weight <= 1:
            raise ValueError(
                "Received an invalid value for `weight`, expected a number in [0, 1]. "
                f"Received: weight={weight!r}"
            )
        self.teacher = teacher
        self.temperature = float(temperature)
        self.weight = float(weight)

    @classmethod
    def get(cls, identifier):
        """A `Distillation` from `distill=`: `None`/`False` (none), `True`, a teacher model, or one."""
        if identifier is None or identifier is False:
            return None
        _distillation_classes()  # refuses a Keras without `keras.distillation`, before training
        if identifier is True:
            return cls()
        if isinstance(identifier, Distillation):
            return identifier
        if isinstance(identifier, keras.Model):
            return cls(teacher=identifier)
        raise ValueError(
            "Received an invalid value for `distill`, expected True, a teacher keras.Model or "
            f"a darn.Distillation. Received: distill={identifier!r}"
        )

    def teacher_for(self, model):
        """The teacher: the one given, else a frozen copy of `model`."""
        teacher = self.teacher if self.teacher is not None else Rebuilder(model).build()
        teacher.trainable = False
        return teacher

    def distiller(self, student, teacher):
        """A `keras.distillation.Distiller` training `student` on `teacher`, not compiled."""
        output_distillation, student_distiller = _distillation_classes()
        loss = output_distillation(temperature=self.temperature,
                                   from_probabilities=ends_in_softmax(student))
        return student_distiller(teacher=teacher, student=student, distillation_losses=loss,
                                 student_loss_weight=1.0 - self.weight)

    def __repr__(self):
        teacher = None if self.teacher is None else f"<model '{self.teacher.name}'>"
        return (f"Distillation(teacher={teacher}, temperature={self.temperature}, "
                f"weight={self.weight})")


def ends_in_softmax(model):
    """Whether every output of `model` comes from a softmax (probabilities, not logits)."""
    for tensor in model.outputs:
        layer, _ = producer_of(tensor)
        activation = getattr(layer, "activation", None)
        if not (isinstance(layer, keras.layers.Softmax) or activation is keras.activations.softmax):
            return False
    return True


def _distillation_classes():
    """`(OutputDistillation, StudentDistiller)`, built on `keras.distillation` (made once).

    Raises:
        ValueError: where the installed Keras has no `keras.distillation`.
    """
    global _CLASSES
    if _CLASSES is not None:
        return _CLASSES
    if not hasattr(keras, "distillation"):
        raise ValueError(
            "Distillation is built on `keras.distillation`, which Keras "
            f"{keras.__version__} does not have; install a newer Keras (`pip install -U keras`)."
        )

    class OutputDistillation(keras.distillation.LogitsDistillation):
        """Keras' `LogitsDistillation` (KL divergence at a temperature, times `T^2`),
        also for outputs that are probabilities: their logarithms act as logits.

        Args:
            temperature: the softmax temperature. Defaults to `4.0`.
            from_probabilities: the outputs are probabilities (a softmax).
                Defaults to `False`.
        """

        def __init__(self, temperature=4.0, from_probabilities=False):
            # A `KLDivergence` instance: Keras applies the tempered softmax only
            # for one, and turns its default, the string "kl_divergence", into
            # the bare function, which would compare the logits themselves.
            super().__init__(temperature=temperature, loss=keras.losses.KLDivergence())
            self.from_probabilities = bool(from_probabilities)

        def compute_loss(self, teacher_outputs, student_outputs, **kwargs):
            if self.from_probabilities:
                as_logits = lambda p: keras.ops.log(keras.ops.clip(p, 1e-7, 1.0))  # noqa: E731
                teacher_outputs = keras.tree.map_structure(as_logits, teacher_outputs)
                student_outputs = keras.tree.map_structure(as_logits, student_outputs)
            return super().compute_loss(teacher_outputs, student_outputs, **kwargs)

        def get_config(self):
            return {"temperature": self.temperature, "from_probabilities": self.from_probabilities}

        @classmethod
        def from_config(cls, config):
            return cls(**config)


    class StudentDistiller(keras.distillation.Distiller):
        """Keras' `Distiller`, with the student's regularization losses in the loss.

        Keras' `Distiller` returns the student and distillation losses only; a
        plain `fit` of the student would also add the losses its layers create
        (weight regularizers, NodeDrop's penalty). They are added here, so that
        distilling does not switch them off. `compile` also gives an uncompiled
        student the student loss, for the criteria that score units by it.
        """

        def compile(self, optimizer="adam", loss=None, metrics=None, **kwargs):
            super().compile(optimizer=optimizer, loss=loss, metrics=metrics, **kwargs)
            # Criteria that score units by the loss read it from the model they
            # probe, the student.
            if not self.student.compiled:
                self.student.loss = loss

        def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
            total = super().compute_loss(x, y, y_pred, sample_weight, training)
            extra = self.student.losses
            if extra:
                total = keras.ops.add(total, keras.ops.sum(keras.ops.stack(
                    [keras.ops.cast(loss, total.dtype) for loss in extra])))
            return total

    _CLASSES = (OutputDistillation, StudentDistiller)
    return _CLASSES


_CLASSES = None
