"""The training script each FLARE client runs in the tutorials: a numpy "model" nudged once per round.

Arguments (the recipe's ``train_args``): ``--sleep S`` seconds of "training" per round (default 2),
``--fail-site NAME`` makes that site raise in its first round (see 03_debugging_a_failing_site),
``--hold-until PATH`` holds the first round until PATH exists (at most 10 minutes): tests use it to look at a job
that is certainly still running.
"""

import argparse
import os
import time

import nvflare.client as flare

parser = argparse.ArgumentParser()
parser.add_argument("--sleep", type=float, default=2.0)
parser.add_argument("--fail-site", default=None)
parser.add_argument("--hold-until", default=None)
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
    if args.hold_until and model.current_round == 0:
        deadline = time.monotonic() + 600
        while not os.path.exists(args.hold_until) and time.monotonic() < deadline:
            time.sleep(0.2)
    time.sleep(args.sleep)
    params = {k: v + 1 for k, v in model.params.items()}
    flare.send(flare.FLModel(params=params, metrics={"loss": 1.0 / (model.current_round + 1)}))
