"""The training script each FLARE client runs in the tutorials: a numpy "model" nudged once per round.

Arguments (the recipe's ``train_args``): ``--sleep S`` seconds of "training" per round (default 2),
``--fail-site NAME`` makes that site raise in its first round (see 03_debugging_a_failing_site).
"""

import argparse
import time

import nvflare.client as flare

parser = argparse.ArgumentParser()
parser.add_argument("--sleep", type=float, default=2.0)
parser.add_argument("--fail-site", default=None)
args, _ = parser.parse_known_args()

flare.init()
site = flare.get_site_name()
while flare.is_running():
    model = flare.receive()
    if model is None:
        break
    print(f"round {model.current_round} on {site}: training for {args.sleep:g} s", flush=True)
    if args.fail_site == site:
        raise RuntimeError(f"{site} cannot read its data (this failure is on purpose)")
    time.sleep(args.sleep)
    params = {k: v + 1 for k, v in model.params.items()}
    flare.send(flare.FLModel(params=params, metrics={"loss": 1.0 / (model.current_round + 1)}))
