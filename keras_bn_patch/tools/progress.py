"""recalibrate's progress line: the stage (staged method) or pass (the others) it is in, the
batch within it, and the time left, estimated from the time each batch has taken so far.

Printed by the package itself, not by Keras's ``Progbar``, whose options differ from one Keras
release to the next (a label that is not averaged, a target not known yet).  ``verbose=1``: one
line, rewritten after every batch; ``verbose=2``: a line per finished stage; 0: nothing.
"""
import sys
import time


class Progress(object):
    def __init__(self, what, stages, verbose, stream=None, unit="stage"):
        """``stages``: how many ``unit`` ("stage" or "pass") the method runs."""
        self._what, self._stages, self._verbose = what, stages, verbose
        self._unit, self._units = unit, unit + ("es" if unit.endswith("s") else "s")
        self._stream = stream or sys.stdout
        self._start = time.time()
        self._stage, self._batch = 0, 0  # finished stages; batches of the current one
        self._per_stage = None  # batches a stage reads: known once the first stage has read them
        self._batches_done = 0

    def batch(self):
        """One more batch of the current stage done."""
        self._batch += 1
        self._batches_done += 1
        if self._verbose == 1:
            self._show(end="\r")

    def update(self, stages_done):
        """``stages_done`` stages finished (the calls of the passes and layer-by-layer methods)."""
        if self._per_stage is None and self._batch:
            self._per_stage = self._batch
        self._stage, self._batch = stages_done, 0
        if self._verbose:
            self._show(end="\n" if self._verbose == 2 or stages_done >= self._stages else "\r")

    def _show(self, end):
        line = "%s: %s %d/%d" % (self._what, self._unit, min(self._stage + 1, self._stages), self._stages)
        if self._batch:
            line += ", batch %d%s" % (self._batch, "/%d" % self._per_stage if self._per_stage else "")
        if self._stage >= self._stages:
            line = "%s: %d/%d %s done in %.0f s" % (self._what, self._stages, self._stages, self._units,
                                                  time.time() - self._start)
        else:
            line += " - %s" % self._left()
        self._stream.write(line.ljust(72) + end)
        self._stream.flush()

    def _left(self):
        elapsed = time.time() - self._start
        if self._per_stage:  # batch by batch: every stage reads as many
            done, total = self._batches_done, self._per_stage * self._stages
        elif self._stage:
            done, total = self._stage, self._stages
        else:
            return "time left known after the first %s" % self._unit
        return "about %.0f s left" % (elapsed / max(done, 1) * max(total - done, 0))
