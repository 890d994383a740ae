"""Versions and what differs with them: the bottom module every other one may import."""
import re


def version_tuple(text):
    """'2.2.4' -> (2, 2, 4); '2.4.0-rc1' -> (2, 4, 0); anything unreadable -> ()."""
    return tuple(int(part) for part in re.findall(r"\d+", str(text).split("-")[0].split("+")[0])[:3])


def tf_v1(tf):
    """TensorFlow's 1.x API: ``tf.compat.v1`` where it exists (TF >= 1.13), else ``tf`` itself
    (None stays None: TensorFlow not imported)."""
    return getattr(getattr(tf, "compat", None), "v1", tf)
