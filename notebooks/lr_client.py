"""The training script of 06_compare_runs: each site fits a linear model to its own small data set, a few steps of
gradient descent per round, at the learning rate the recipe passes.

Arguments (the recipe's ``train_args``, named as in NVFlare's examples): ``--learning_rate LR`` (default 0.01),
``--local_steps N`` gradient steps per round (default 5), ``--sleep S`` seconds of extra "training" (default 0).

Each round the site sends its updated weights and one metric, ``loss``: the mean squared error of the model it
received (the global model) on its own data, so the server's aggregate of it is the global model's loss, round by
round. A site's data are generated from its name: the same site has the same data in every run, and two runs differ
only by their hyper-parameters.
"""

import argparse
import time
import zlib

import numpy as np
import nvflare.client as flare

parser = argparse.ArgumentParser()
parser.add_argument("--learning_rate", type=float, default=0.01)
parser.add_argument("--local_steps", type=int, default=5)
parser.add_argument("--sleep", type=float, default=0.0)
args, _ = parser.parse_known_args()

flare.init()
site = flare.get_site_name()

rng = np.random.default_rng(zlib.crc32(site.encode()))
x = rng.normal(size=(64, 3)) + rng.normal(size=3)  # each site's features are shifted its own way
y = x @ np.array([1.5, -2.0, 0.5]) + 0.1 * rng.normal(size=64)

while flare.is_running():
    model = flare.receive()
    if model is None:
        break
    ((key, weights),) = model.params.items()
    w = np.asarray(weights, dtype=float)
    loss = float(np.mean((x @ w - y) ** 2))
    for _ in range(args.local_steps):
        w = w - args.learning_rate * 2 / len(y) * x.T @ (x @ w - y)
    print(f"round {model.current_round} on {site}: loss {loss:.4f}, learning rate {args.learning_rate:g}", flush=True)
    time.sleep(args.sleep)
    flare.send(flare.FLModel(params={key: w}, metrics={"loss": round(loss, 6)}))
