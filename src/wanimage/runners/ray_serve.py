"""The scale-out runner: engines as Ray Serve deployments with GPU replicas and autoscaling, and
the same FastAPI app as a Serve ingress whose workers call the engine replicas through deployment
handles. Task state must then live in PostgreSQL (several API replicas share it).

    wanimage serve --ray auto          # or ray://HEAD:10001, with WANIMAGE_DATABASE_URL set

A replica reports progress and sees cancels through the task store itself (the worker's
`TaskProgress` carries its `TaskContext` to the replica, which builds its own from it); a
replica that dies mid-task surfaces as `EngineLost`, and the worker gives the task back to the
queue. Partial images do not leave a replica yet (worker processes share theirs through the image
store; a replica has no image store): streaming clients get progress and the final images."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PIL import Image

from ..config import Settings
from ..core.progress import TaskProgress
from ..engines.base import (
    Canceled,
    Engine,
    EngineFactory,
    EngineLost,
    GenerationJob,
    ProgressFn,
    as_factories,
    no_progress,
)
from ..tasks.records import TaskContext
from ..types import Capabilities

log = logging.getLogger(__name__)

# Before `import ray`: no usage reporting, and bind to loopback rather than the external address.
RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
ENGINE_APP = "wanimage-engine"  # one application per distinct engine: wanimage-engine-0, -1, ...
API_APP = "wanimage"


def ray_environment() -> None:
    for key, value in RAY_ENV.items():
        os.environ.setdefault(key, value)


@dataclass(frozen=True)
class ScalingConfig:
    """How engine replicas are placed and scaled (env WANIMAGE_RAY_*)."""

    num_gpus: float = 1.0
    num_cpus: float = 1.0
    min_replicas: int = 1
    max_replicas: int = 1
    target_ongoing_requests: float = 1.0  # tasks per replica before Serve adds one
    upscale_delay_s: float = 5.0
    downscale_delay_s: float = 60.0
    api_replicas: int = 1

    @classmethod
    def from_settings(cls, settings: Settings) -> ScalingConfig:
        return cls(
            num_gpus=settings.ray_num_gpus,
            num_cpus=settings.ray_num_cpus,
            min_replicas=settings.ray_min_replicas,
            max_replicas=settings.ray_max_replicas,
            target_ongoing_requests=settings.ray_target_ongoing_requests,
            api_replicas=settings.ray_api_replicas,
        )


# ------------------------------------------------------------------ replica side


class EngineReplica:
    """The body of an engine deployment: one Engine per replica, built by `factory`."""

    def __init__(self, factory: Callable[[], Engine]) -> None:
        self.engine = factory()
        self._stores: dict[str, Any] = {}
        self._lock = threading.Lock()  # Serve runs sync methods on a thread pool

    def capabilities(self) -> Capabilities:
        return self.engine.capabilities

    def name(self) -> str:
        return self.engine.name

    def prepare(self, job: GenerationJob) -> GenerationJob:
        prepare = getattr(self.engine, "prepare", None)
        return job if prepare is None else prepare(job)

    def generate(self, job: GenerationJob, ctx: TaskContext | None) -> list[Image.Image]:
        if ctx is None:
            return self.engine.generate(job, no_progress)
        return self.engine.generate(job, TaskProgress.through_store(ctx, self._store(ctx.database_url)))

    def _store(self, url: str):
        from ..tasks.store import TaskStore

        with self._lock:
            if url not in self._stores:
                self._stores[url] = TaskStore(url)
            return self._stores[url]


# ------------------------------------------------------------------ worker side


class RayEngineProxy(Engine):
    """An Engine whose work happens on a Serve deployment (any replica, any node): the worker's
    side of an EngineReplica."""

    def __init__(self, handle: Any) -> None:
        self.handle = handle
        self.capabilities: Capabilities = handle.capabilities.remote().result()
        self.name = "ray:" + handle.name.remote().result()

    def prepare(self, job: GenerationJob) -> GenerationJob:
        """The job as the replica's model reads it (translation runs where the model lives)."""
        return self.handle.prepare.remote(job.with_images([])).result().with_images(list(job.images))

    def generate(self, job: GenerationJob, progress: ProgressFn) -> list[Image.Image]:
        from ray.exceptions import ActorDiedError, ActorUnavailableError, RayTaskError

        ctx = progress.context if isinstance(progress, TaskProgress) else None
        try:
            return self.handle.generate.remote(job, ctx).result()
        except (ActorDiedError, ActorUnavailableError) as exc:
            raise EngineLost(str(exc).splitlines()[0]) from None
        except RayTaskError as exc:
            if isinstance(exc.cause, Canceled):
                raise Canceled from None
            raise (exc.cause if isinstance(exc.cause, Exception) else exc) from None


# ------------------------------------------------------------------ deployments


def replica_gpus(factory: EngineFactory, scaling: ScalingConfig) -> float:
    """GPUs per replica: WANIMAGE_RAY_NUM_GPUS (one by default), or the model's context-parallel
    degree when it spreads one image over more (`factory.gpus`)."""
    if scaling.num_gpus <= 0:  # a CPU deployment stays one
        return scaling.num_gpus
    return max(scaling.num_gpus, float(factory.gpus))


def engine_application(factory: EngineFactory, scaling: ScalingConfig):
    from ray import serve

    deployment = serve.deployment(
        EngineReplica,
        name="engine",
        ray_actor_options={"num_gpus": replica_gpus(factory, scaling), "num_cpus": scaling.num_cpus},
        autoscaling_config={
            "min_replicas": scaling.min_replicas,
            "max_replicas": scaling.max_replicas,
            "target_ongoing_requests": scaling.target_ongoing_requests,
            "upscale_delay_s": scaling.upscale_delay_s,
            "downscale_delay_s": scaling.downscale_delay_s,
        },
        # One task at a time per replica (a GPU runs one generation); the rest wait in Serve's
        # queue, which is what autoscaling measures.
        max_ongoing_requests=1,
    )
    return deployment.bind(factory)


def engine_apps(factories: dict[str, EngineFactory]) -> dict[str, str]:
    """Model id -> the name of the Serve application of its engine: one per distinct factory."""
    names: dict[int, str] = {}
    for factory in factories.values():
        names.setdefault(id(factory), f"{ENGINE_APP}-{len(names)}")
    return {model: names[id(factory)] for model, factory in factories.items()}


def _proxy_registry(apps: dict[str, str]):
    from ray import serve

    from ..engines.registry import EngineRegistry

    connectors: dict[str, Callable[[], Engine]] = {}
    for app in set(apps.values()):
        connectors[app] = lambda app=app: RayEngineProxy(serve.get_deployment_handle("engine", app_name=app))
    return EngineRegistry({model: connectors[app] for model, app in apps.items()})


def api_application(settings: Settings, apps: dict[str, str], scaling: ScalingConfig):
    """The FastAPI app as a Serve ingress; it is built on each replica at start."""
    from ray import serve

    from ..app import create_app

    @serve.ingress()
    class Api:
        def __init__(self, data: dict, apps: dict[str, str]) -> None:
            self.settings, self.apps = Settings(**data), apps

        def __serve_build_asgi_app__(self):
            return create_app(self.settings, _proxy_registry(self.apps))

    deployment = serve.deployment(Api, name="api", num_replicas=scaling.api_replicas,
                                  ray_actor_options={"num_cpus": 0.5})
    return deployment.bind(_settings_data(settings), apps)


def _settings_data(settings: Settings) -> dict[str, Any]:
    """Settings for the replicas, secrets included (`model_dump` would mask SecretStr fields)."""
    from pydantic import SecretStr

    return {k: v.get_secret_value() if isinstance(v, SecretStr) else v for k, v in settings.model_dump().items()}


def deploy(
    settings: Settings, factories: dict[str, EngineFactory | Callable[[], Engine]], *,
    scaling: ScalingConfig | None = None
) -> None:
    """Deploy one engine application per distinct engine, then the API ingress on
    `settings.host:settings.port`."""
    from ray import serve

    factories = as_factories(factories)
    scaling = scaling or ScalingConfig.from_settings(settings)
    apps = engine_apps(factories)
    serve.start(http_options={"host": settings.host, "port": settings.port})
    deployed = set()
    for model, app in apps.items():
        if app not in deployed:
            serve.run(engine_application(factories[model], scaling), name=app, route_prefix=None)
            deployed.add(app)
    serve.run(api_application(settings, apps, scaling), name=API_APP, route_prefix="/")


def serve_on_ray(settings: Settings, address: str) -> None:
    """`wanimage serve --ray ADDRESS`: deploy and keep the driver alive."""
    ray_environment()
    import ray

    from ..engines.factories import engine_factories

    if settings.database_url is None or settings.database_url.startswith("sqlite"):
        log.warning("the Ray runner should use PostgreSQL (WANIMAGE_DATABASE_URL): SQLite is per machine")
    ray.init(address=address, include_dashboard=False)
    deploy(settings, engine_factories(settings, hardware_checks=False))  # the driver may have no GPU
    log.info("wanimage on Ray Serve: http://%s:%d", settings.host, settings.port)
    while True:
        time.sleep(3600)


# ------------------------------------------------------------------ Serve config file builders
# `serve deploy examples/serve.yaml` (or `serve run`): settings come from WANIMAGE_* variables in
# the config's runtime_env; `args` may override scaling fields by name.


def _from_env(args: dict[str, Any]) -> tuple[Settings, ScalingConfig]:
    settings = Settings()
    base = ScalingConfig.from_settings(settings)
    scaling = ScalingConfig(**{**base.__dict__, **{k: v for k, v in args.items() if k in base.__dict__}})
    return settings, scaling


def engine_builder(args: dict[str, Any]):
    """Application builder for engine number `args["index"]` (0 for the built-in engine)."""
    from ..engines.factories import engine_factories

    settings, scaling = _from_env(args)
    factories = engine_factories(settings, hardware_checks=False)  # checked in the replica, where it runs
    apps = engine_apps(factories)
    wanted = f"{ENGINE_APP}-{int(args.get('index', 0))}"
    model = next(m for m, app in apps.items() if app == wanted)
    return engine_application(factories[model], scaling)


def api_builder(args: dict[str, Any]):
    """Application builder for the API ingress (route prefix "/")."""
    from ..engines.factories import engine_factories

    settings, scaling = _from_env(args)
    return api_application(settings, engine_apps(engine_factories(settings, hardware_checks=False)), scaling)
