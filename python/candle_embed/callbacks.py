"""gensim's training-callback protocol (``gensim.models.callbacks.CallbackAny2Vec``).

``Word2Vec.train`` calls, on each callback, ``on_train_begin(model)``, then per epoch
``on_epoch_begin(model)`` and ``on_epoch_end(model)``, and ``on_train_end(model)``. At epoch
end the model is between epochs: ``model.wv`` holds the current vectors, and ``model.save``
writes a checkpoint that ``Word2Vec.load(...).resume_training(...)`` continues exactly.
gensim's own callback objects work too (the protocol is the same).
"""

from __future__ import annotations

from typing import Any


class CallbackAny2Vec:
    """Base class of training callbacks: override the hooks you need (each does nothing)."""

    def on_epoch_begin(self, model: Any) -> None:
        """Called before each epoch."""

    def on_epoch_end(self, model: Any) -> None:
        """Called after each epoch, with ``model.wv`` up to date."""

    def on_batch_begin(self, model: Any) -> None:
        """Part of gensim's protocol; Word2Vec training (here as in gensim 4) never calls it."""

    def on_batch_end(self, model: Any) -> None:
        """Part of gensim's protocol; Word2Vec training (here as in gensim 4) never calls it."""

    def on_train_begin(self, model: Any) -> None:
        """Called once when ``train`` starts."""

    def on_train_end(self, model: Any) -> None:
        """Called once when ``train`` ends."""
