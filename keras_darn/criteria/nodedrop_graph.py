"""The functional graph of a Keras model, as the NodeDrop analysis walks it."""

from keras_darn.graph.unit_graph import functional_of


class FunctionalGraph:
    """The nodes of a Functional (or built Sequential) model, in graph order."""

    def __init__(self, model):
        function = functional_of(model)
        self.inputs = function.inputs
        self.outputs = function.outputs
        by_depth = function._nodes_by_depth
        self.nodes = [n for d in sorted(by_depth, reverse=True) for n in by_depth[d]]
        self._consumers = {}
        self._calls = {}
        self.layers = []
        for node in self.nodes:
            for tensor in node.arguments.keras_tensors:
                self._consumers.setdefault(id(tensor), []).append(node)
            if node.is_input:
                continue
            op = node.operation
            if id(op) not in self._calls:
                self.layers.append(op)
            self._calls[id(op)] = self._calls.get(id(op), 0) + 1
        self._output_ids = {id(t) for t in self.outputs}

    def consumers(self, tensor):
        return self._consumers.get(id(tensor), [])

    def is_output(self, tensor):
        return id(tensor) in self._output_ids

    def calls(self, layer):
        return self._calls.get(id(layer), 0)
