"""The tensor maths the shadows of ``forward`` build in the model's graph: a batch's moments of a
BN layer's input, and the layer normalised by its batch's own statistics.  Keras's backend in
graph flavours (Theano included), TensorFlow's own in TF 2 flavours."""
from ..core.versions import tf_v1
from .bn_stats import channel_axes


def on_tensorflow(api):
    """The flavour runs on TensorFlow (every TF 2 flavour; Keras 2 unless its backend is Theano;
    Keras 3 when its backend is)."""
    return getattr(api.keras.backend, "backend", lambda: "tensorflow")() == "tensorflow"


class Ops(object):
    """The few tensor operations the shadows need: Keras's backend in graph flavours (Theano
    included), TensorFlow's own in TF 2 flavours (Keras 3's backend module lacks them)."""

    def __init__(self, api, fused):
        if api.eager and not on_tensorflow(api):  # Keras 3 on JAX or PyTorch: its own ops
            import keras
            self.mean, self.sum = (lambda x, axis, keepdims=False, _f=f: _f(x, axis=axis, keepdims=keepdims)
                                   for f in (keras.ops.mean, keras.ops.sum))
            self.square, self.sqrt, self.reshape, self.cast = keras.ops.square, keras.ops.sqrt, keras.ops.reshape, \
                keras.ops.cast
            self.shape, self.int_shape = lambda tensor: keras.ops.convert_to_tensor(tuple(tensor.shape)), \
                lambda tensor: tuple(tensor.shape)
        elif api.eager:
            import tensorflow as tf
            self.mean, self.sum = tf.reduce_mean, tf.reduce_sum
            self.square, self.sqrt, self.shape, self.reshape = tf.square, tf.sqrt, tf.shape, tf.reshape
            self.cast, self.int_shape = tf.cast, lambda tensor: tuple(tensor.shape.as_list())
        else:
            K = api.keras.backend
            self.mean, self.sum = (lambda x, axis, keepdims=False, _f=f: _f(x, axis=axis, keepdims=keepdims)
                                   for f in (K.mean, K.sum))
            self.square, self.sqrt, self.shape, self.reshape = K.square, K.sqrt, K.shape, K.reshape
            self.cast, self.int_shape = K.cast, K.int_shape
        self._fused = None  # TensorFlow's fused training-mode batch norm, if asked and the backend is TensorFlow
        if fused and on_tensorflow(api):
            import tensorflow as tf
            self._fused = tf_v1(tf).nn.fused_batch_norm

    def moments(self, layer, inputs):
        """[mean (channels kept as dims of size 1), sum of squared deviations, input shape]: the
        batch's moments, two-pass within the batch; batches merge in float64 (bn_stats)."""
        x = self.cast(inputs, "float32")
        ndim = len(self.int_shape(x))
        axes = [a for a in range(ndim) if a not in channel_axes(layer, ndim)]
        mean = self.mean(x, axes, keepdims=True)
        return [mean, self.sum(self.square(x - mean), axes), self.shape(x)]

    def batch_normalised(self, layer, inputs):
        """The layer's output normalised with its input batch's own statistics."""
        x = self.cast(inputs, "float32")
        ndim = len(self.int_shape(x))
        channels = channel_axes(layer, ndim)
        if self._fused is not None and ndim == 4 and channels == [3] and inputs.dtype == x.dtype and self.int_shape(x)[3]:
            # An image batch, channels last: one fused op (what Keras's own layer runs in
            # training mode, so diagnose's figure of fit()) rather than a dozen.  Only when
            # asked (``fused``): it is not exact to the last bits, and a deep net amplifies
            # that from layer to layer, so recalibrate's estimate computes the moments itself.
            return self._fused(x, self._parameter(layer, "gamma", 1.0, x), self._parameter(layer, "beta", 0.0, x),
                               epsilon=float(layer.epsilon), data_format="NHWC", is_training=True)[0]
        axes = [a for a in range(ndim) if a not in channels]
        mean = self.mean(x, axes, keepdims=True)
        variance = self.mean(self.square(x - mean), axes, keepdims=True)
        param = self.int_shape(layer.moving_mean)
        shape = list(param) if len(param) == ndim else [1] * ndim
        if len(param) != ndim:
            for axis, size in zip(channels, param):
                shape[axis] = size
        out = (x - mean) / self.sqrt(variance + float(layer.epsilon))
        if getattr(layer, "gamma", None) is not None:
            out = out * self.reshape(layer.gamma, shape)
        if getattr(layer, "beta", None) is not None:
            out = out + self.reshape(layer.beta, shape)
        return self.cast(out, inputs.dtype) if inputs.dtype != x.dtype else out


    def _parameter(self, layer, name, default, x):
        """gamma or beta (a vector of ``default`` where the layer has none)."""
        import tensorflow as tf
        value = getattr(layer, name, None)
        return tf.fill([self.int_shape(x)[3]], default) if value is None else value
