"""A tiny numpy FedAvg client used by flarenb's tests: prints a timestamped marker line each round."""

import os
import time

import nvflare.client as flare

flare.init()
site = flare.get_site_name()
while flare.is_running():
    model = flare.receive()
    if model is None:
        break
    print(f"flarenb-test round={model.current_round} site={site} t={time.time():.3f}", flush=True)
    if os.environ.get("FLARENB_TEST_FAIL_SITE") == site or (model.meta or {}).get("fail_site") == site:
        raise RuntimeError(f"flarenb-test: {site} fails on purpose")
    time.sleep(float(os.environ.get("FLARENB_TEST_ROUND_SECONDS", "2")))
    params = {k: v + 1 for k, v in model.params.items()}
    flare.send(flare.FLModel(params=params, metrics={"loss": 1.0 / (model.current_round + 1)}))
