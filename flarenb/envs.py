"""NVFlare's execution environments as flarenb targets: ``flarenb.submit(recipe, env=SimEnv(...))``.

A notebook that already holds one of NVFlare's own ``ExecEnv`` objects keeps it and gains flarenb's behaviour:

* ``SimEnv`` → a background simulation (:func:`flarenb.sim.submit`) with the same clients, threads, GPUs and
  log config (and, if set, its ``workspace_root`` as the root of flarenb's per-simulation workspaces);
* ``PocEnv`` → the managed local FLARE (:func:`flarenb.poc.start`, reused if it runs — never wiped, unlike
  ``PocEnv.deploy``), then an idempotent submit;
* ``ProdEnv`` → a connection with its startup kit (:func:`flarenb.connect`), then an idempotent submit.
"""

from __future__ import annotations

from typing import Any

from .errors import FlareError


def submit_to_env(target: Any, env: Any, **kw: Any):
    """Submit ``target`` to the environment ``env`` describes (see the module docstring)."""
    from nvflare.recipe.poc_env import PocEnv
    from nvflare.recipe.prod_env import ProdEnv
    from nvflare.recipe.sim_env import WORKSPACE_ROOT, SimEnv

    from . import submission

    if isinstance(env, SimEnv):
        from . import sim

        for flag in ("stream_logs", "flare"):
            kw.pop(flag, None)
        root = env.workspace_root if env.workspace_root and env.workspace_root != WORKSPACE_ROOT else None
        return sim.submit(
            target,
            clients=None if env.clients else env.num_clients,
            sites=list(env.clients) if env.clients else None,
            threads=env.num_threads,
            gpu=env.gpu_config,
            log_config=env.log_config,
            workspace_root=root,
            **kw,
        )
    if isinstance(env, PocEnv):
        from . import poc

        if env.project_conf_path or env.docker_image or env.use_he:
            raise FlareError(
                "flarenb's local FLARE does not support PocEnv's project_conf_path, docker_image or use_he",
                "Start that POC yourself and use flarenb.connect(startup_kit=...) instead",
            )
        flare = poc.start(
            clients=None if env.clients else env.num_clients,
            sites=list(env.clients) if env.clients else None,
            study=env.study,
        )
        return submission.submit(target, flare=flare, **kw)
    if isinstance(env, ProdEnv):
        from . import session

        flare = session.connect(startup_kit=env.startup_kit_location, study=env.study)
        return submission.submit(target, flare=flare, **kw)
    raise FlareError(
        f"Cannot submit to a {type(env).__name__}",
        "Pass an NVFlare SimEnv, PocEnv or ProdEnv, or no env to use the current connection",
    )
