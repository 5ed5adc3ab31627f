"""The front door's types and errors: Target, schedules, Result, the registry."""

import keras
import numpy as np
import pytest

import keras_darn as darn

L = keras.layers


def _model():
    return keras.Sequential([keras.Input((6,)), L.Dense(8, activation="relu", name="h"),
                             L.Dense(3, activation="softmax", name="out")])


def test_schedules_give_amounts_at_their_steps_and_round_trip():
    assert [darn.schedules.Linear(start=1, end=4)(s) for s in range(6)] == [
        None, 0.25, 0.5, 0.75, 1.0, None]
    assert darn.schedules.Linear(start=0, end=4, frequency=2).steps(6) == [0, 2, 4]
    assert [darn.schedules.Geometric(0.5, every=2)(s) for s in range(4)] == [None, 0.5, None, 0.75]
    assert [darn.schedules.Constant(0.2, start=2, stop=3)(s) for s in range(5)] == [
        None, None, 0.2, 0.2, None]
    np.testing.assert_allclose(darn.schedules.LogSpaced(0.01, 1.0, 3).values(), [0.01, 0.1, 1.0])
    np.testing.assert_allclose(
        darn.schedules.LogSpaced(0.98, 0.5, 2, distance_to_one=True).values(), [0.98, 0.5])
    for schedule in (darn.schedules.Polynomial(start=1, end=3, power=2),
                     darn.schedules.Geometric(0.3), darn.schedules.Constant(1.0, every=2),
                     darn.schedules.LogSpaced(0.1, 0.2, 4)):
        config = keras.saving.serialize_keras_object(schedule)
        assert darn.Schedule.get(config) == schedule


@pytest.mark.parametrize("make, argument", [
    (lambda: darn.schedules.Linear(start=-1), "start"),
    (lambda: darn.schedules.Linear(start=2, end=1), "end"),
    (lambda: darn.schedules.Geometric(0.0), "rate"),
    (lambda: darn.schedules.Constant(0.2, every=0), "every"),
    (lambda: darn.schedules.LogSpaced(0.0, 1.0, 3), "first"),
    (lambda: darn.Schedule.get("linear"), "schedule"),
])
def test_schedules_refuse_bad_values(make, argument):
    with pytest.raises(ValueError, match=argument):
        make()


@pytest.mark.parametrize("kwargs, argument", [
    ({"fraction": 1.0}, "fraction"),
    ({"units": 0}, "units"),
    ({"params": 1.5}, "params"),
    ({"flops": -3}, "flops"),
    ({"max_accuracy_drop": 2}, "max_accuracy_drop"),
    ({"min_units": {"h": 0}}, "min_units"),
    ({"exclude": "h"}, "exclude"),
])
def test_target_refuses_bad_values(kwargs, argument):
    with pytest.raises(ValueError, match=f"`{argument}`"):
        darn.Target(**kwargs)


def test_target_widths_limits_and_config():
    target = darn.Target(fraction=0.5, min_units={"a": 7}, exclude=["c"])
    assert target.width_of("a", 10) == 7
    assert target.width_of("b", 10) == 5
    assert target.width_of("c", 10) is None
    assert darn.Target.from_config(target.get_config()) == target
    assert darn.Target(units={"a": 3}).width_of("b", 10) is None
    with pytest.raises(ValueError, match="supports"):
        darn.Target(params=100).check_supported("m", ("fraction",))


def test_unknown_method_lists_the_known_ones():
    with pytest.raises(ValueError, match="Known names: .*taylor1"):
        darn.prepare(_model(), "tayler1", darn.Target(fraction=0.5))


def test_each_entry_point_refuses_methods_of_the_other_kind():
    with pytest.raises(ValueError, match="between fits: call darn.resize"):
        darn.prepare(_model(), "darn")
    with pytest.raises(ValueError, match="during fit: call darn.prepare"):
        darn.resize(_model(), "nodedrop")


def test_unsupported_target_and_bad_model_are_refused():
    with pytest.raises(ValueError, match="does not support the target amount"):
        darn.prepare(_model(), "nodedrop", darn.Target(fraction=0.5))
    with pytest.raises(ValueError, match="keras.Model"):
        darn.prepare("model", "taylor1", darn.Target(fraction=0.5))
    with pytest.raises(ValueError, match="options"):
        darn.prepare(_model(), darn.methods.get("weight_l1"), darn.Target(fraction=0.5),
                     algorithm="single")


def test_a_parameter_target_becomes_the_fraction_that_reaches_it():
    x = np.random.default_rng(0).normal(size=(64, 6)).astype("float32")
    y = (x[:, 0] > 0).astype("int64")
    model = _model()
    before = darn.count_params(model)  # 6*8+8 + 8*3+3 = 83
    model, callback = darn.prepare(model, "weight_l1", darn.Target(params=60))
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=1, verbose=0, callbacks=[callback])
    result = callback.finish()
    assert result.before["params"] == before
    assert result.after["params"] <= 60 < darn.count_params(
        darn.add_units(result.model, {"h": 1}, init="zeros_out", compile=False))
    with pytest.raises(ValueError, match="cannot be reached"):
        model, callback = darn.prepare(_model(), "weight_l1", darn.Target(params=10))
        model.compile("adam", "sparse_categorical_crossentropy")
        model.fit(x, y, epochs=1, verbose=0, callbacks=[callback])


def test_result_summary_is_a_table_of_before_and_after():
    model = _model()
    small = darn.remove_units(model, {"h": [0, 1, 2, 3]}, compile=False)
    result = darn.Result(small, [{"step": 0, "action": "remove", "layer": "h"}],
                         darn.resizing.figures(model), method="manual")
    table = result.summary()
    assert "| parameters | 83 | 43 | 1.93x |" in table  # 6*4+4 + 4*3+3
    assert "| width of 'h' | 8 | 4 | 2.00x |" in table
    assert table.startswith("manual: 1 events")


@pytest.mark.parametrize("params, verdict", [
    (43, "met"), (42, "MISSED: above the target"),
    (60, "MISSED: more than 2 % below the target"),
])
def test_result_summary_says_whether_a_count_target_was_met(params, verdict):
    model = _model()
    small = darn.remove_units(model, {"h": [0, 1, 2, 3]}, compile=False)  # 43 parameters
    result = darn.Result(small, [], darn.resizing.figures(model), method="manual",
                         target=darn.Target(params=params),
                         notes={"h2": "not pruned during fit: a reason"})
    check = result.target_check()
    assert (check["goal"], check["reached"]) == (params, 43)
    assert check["met"] == (verdict == "met")
    table = result.summary()
    assert f"reached 43 (0.5181 of before), {verdict}." in table
    assert "- 'h2': not pruned during fit: a reason" in table
    assert darn.Result(small, [], darn.resizing.figures(model)).target_check() is None


def test_finish_returns_the_logs_of_every_epoch_and_one_instance_serves_two_fits():
    x = np.random.default_rng(0).normal(size=(64, 6)).astype("float32")
    y = (x[:, 0] > 0).astype("int64")
    model, callback = darn.prepare(_model(), "weight_l1", darn.Target(fraction=0.5),
                                   schedule=darn.schedules.Linear(start=1))
    model.compile("adam", "sparse_categorical_crossentropy")
    steps = []
    for _ in range(2):
        model.fit(x, y, epochs=2, verbose=0, callbacks=[callback])
        result = callback.finish()
        assert len(result.history["loss"]) == 2
        assert result.history["live_units"][-1] == 4
        steps.append([e["step"] for e in result.events])
    # Events are per fit; in the second fit the 4 units were already off.
    assert steps == [[1], []]


@pytest.mark.parametrize("method, options, message", [
    ("magnitude", {"roundto": 8}, r"no option `roundto`. Did you mean `round_to`\?"),
    ("nodedrop", {"lamda": 1e-4}, r"no option `lamda`. Did you mean `lam`\?"),
    ("magnitude", {"foo": 1}, r"no option `foo`. Its options: \[.*'round_to'"),
    ("magnitud", {}, r"Unknown method. Did you mean 'magnitude'\?"),
])
def test_a_misspelled_method_or_option_names_the_valid_ones(method, options, message):
    target = darn.Target(fraction=0.5) if method.startswith("magnitud") else None
    with pytest.raises(ValueError, match=message):
        darn.prepare(_model(), method, target, **options)
    with pytest.raises(ValueError, match=message.replace("Unknown", "Unknown")):
        darn.resize(_model(), method, target, **options)


@pytest.mark.parametrize("target, argument", [
    (darn.Target(fraction=0.5, exclude=["nope"]), "exclude"),
    (darn.Target(fraction=0.5, min_units={"hh": 2}), "min_units"),
])
def test_layer_names_in_a_target_are_checked_against_the_model(target, argument):
    message = rf"`{argument}`: model '.*' has no layer named .*Layers with resizable units: \['h'\]"
    with pytest.raises(ValueError, match=message):
        darn.prepare(_model(), "magnitude", target)
    with pytest.raises(ValueError, match=r"`units`: model '.*' has no layer named 'H'"):
        darn.resize(_model(), "zeros_out", darn.Target(units={"H": 16}))


def test_limits_that_keep_every_unit_and_a_finish_before_fit_warn():
    with pytest.warns(UserWarning, match=r"min_units=64 keeps every unit of 'h' \(8 units\)"):
        darn.prepare(_model(), "magnitude", darn.Target(fraction=0.5, min_units=64))
    model, callback = darn.prepare(_model(), "magnitude", darn.Target(fraction=0.5))
    with pytest.warns(UserWarning, match="before any epoch of `fit` ran"):
        result = callback.finish()
    assert "fit" in result.notes and result.model.get_layer("h").units == 8


def test_two_target_amounts_during_fit_are_refused_in_plain_words():
    with pytest.raises(ValueError, match=r"one of `fraction`, `params` or `flops`.*'fraction', "
                                         r"'params'"):
        darn.prepare(_model(), "magnitude", darn.Target(fraction=0.5, params=0.5))


class _Subclassed(keras.Model):
    def __init__(self):
        super().__init__()
        self.dense = L.Dense(3)

    def call(self, x):
        return self.dense(x)


def _subclassed():
    model = _Subclassed()
    model(np.zeros((1, 4), "float32"))
    return model


@pytest.mark.parametrize("call, message", [
    (lambda m: darn.prepare(m, 123, darn.Target(fraction=0.5)),
     r"Expected a method name \(a str.*Received: method=123"),
    (lambda m: darn.prepare(m, "magnitude", {"fractoin": 0.5}),
     r"Unknown Target argument 'fractoin'. Did you mean 'fraction'\? Target takes \["),
    (lambda m: darn.prepare(m, "magnitude", "half"),
     r"Expected a `keras_darn.Target`.*Received: target='half'"),
    (lambda m: darn.prepare(m, "magnitude", darn.Target(fraction=0.5), schedule=5),
     r"Expected a `keras_darn.Schedule`.*Received: schedule=5"),
    (lambda m: darn.prepare(m, "magnitude", darn.Target(fraction=0.5), global_pruning="yes"),
     r"`global_pruning`, expected True or False. Received: global_pruning='yes'"),
    (lambda m: darn.prepare(m, "magnitude", darn.Target(fraction=0.5), round_to="8"),
     r"`round_to`, expected a positive integer. Received: round_to='8'"),
    (lambda m: darn.resize(m, "magnitude", darn.Target(fraction=0.5), verbose="loud"),
     r"`verbose`, expected 0 \(silent\) or 1 \(progress\). Received: verbose='loud'"),
    (lambda m: darn.resize(m, "magnitude", darn.Target(fraction=0.5), epochs=-1),
     r"`epochs`, expected a non-negative integer. Received: epochs=-1"),
])
def test_bad_arguments_are_refused_before_training(call, message):
    model = _model()
    model.compile("adam", "sparse_categorical_crossentropy")
    before = [w.copy() for w in model.get_weights()]
    with pytest.raises(ValueError, match=message):
        call(model)
    assert model.optimizer.iterations.numpy() == 0
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


@pytest.mark.parametrize("make, message", [
    (lambda: keras.Sequential([L.Dense(4)]), "has no known input shape; build it"),
    (lambda: keras.Sequential([]), "has no known input shape; build it"),
    (_subclassed, "is a subclassed model; keras_darn reads the graph of functional and "
                  "Sequential models only"),
])
def test_unbuilt_empty_and_subclassed_models_are_refused(make, message):
    for entry in (darn.prepare, darn.resize):
        with pytest.raises(ValueError, match=message):
            entry(make(), "magnitude", darn.Target(fraction=0.5))
