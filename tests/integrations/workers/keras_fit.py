"""One worker of a multi-process Keras run: ``RANK`` names it, as torchrun would."""

from __future__ import annotations

import os
import sys

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras
import numpy as np

from runstream.integrations.keras import RunstreamCallback


def main(store: str) -> None:
    keras.utils.set_random_seed(int(os.environ["RANK"]))
    x = np.random.rand(64, 4).astype("float32")
    y = (x.sum(axis=1) > 2).astype("float32")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="sgd", loss="binary_crossentropy")
    callback = RunstreamCallback(experiment_name="keras", run_name="workers", store=store)
    model.fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=[callback])


if __name__ == "__main__":
    main(sys.argv[1])
