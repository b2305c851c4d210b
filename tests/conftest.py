"""Shared fixtures: a small synthetic credit dataset and a compiled bundle of it."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, settings

from edgewise import Bundle
from edgewise.compile import compile_pipeline
from edgewise.datasets import FEATURES, TARGET, credit_frame, credit_pipeline

# The real Mosquitto fixtures (`broker`, `broker_credentials`) of the transport tests.
pytest_plugins = ["mqtt_broker"]

# Property tests: a quick profile by default, `HYPOTHESIS_PROFILE=thorough` for a long hunt.
settings.register_profile(
    "fast", max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "thorough", max_examples=5000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "fast"))


@pytest.fixture(scope="session")
def credit_train() -> pd.DataFrame:
    return credit_frame(3000, seed=0)


@pytest.fixture(scope="session")
def credit_model(credit_train: pd.DataFrame):
    """A fitted impute/scale/one-hot + LogisticRegression pipeline."""
    pipeline = credit_pipeline("logistic")
    return pipeline.fit(credit_train[FEATURES], credit_train[TARGET])


@pytest.fixture(scope="session")
def bundle_path(tmp_path_factory: pytest.TempPathFactory, credit_model, credit_train) -> Path:
    result = compile_pipeline(credit_model, credit_train, name="credit", version=3, target=TARGET)
    return result.bundle.write(tmp_path_factory.mktemp("bundle") / "credit-3.ewb")


@pytest.fixture(scope="session")
def bundle(bundle_path: Path) -> Bundle:
    return Bundle.read(bundle_path)


@pytest.fixture
def world(tmp_path: Path, bundle: Bundle):
    """Keys and an initialised repository (nothing published yet) in a fresh directory."""
    from trust_world import World

    created = World(tmp_path, bundle)
    created.init()
    return created


@pytest.fixture(scope="session")
def postgres():
    """A real PostgreSQL server on a free loopback port, for the whole test session."""
    from postgres_server import running_postgres

    with running_postgres() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A new, empty control-plane store: an SQLite file, then a real PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "control.db")
    return request.getfixturevalue("postgres").new_database()


@pytest.fixture
def store(store_url: str):
    from edgewise.fleet.store import Store

    with Store.open(store_url) as opened:
        yield opened


@pytest.fixture
def agent(tmp_path: Path, broker, world):
    """An `edgewise agent run` process for device dev-a (not started), killed at teardown."""
    from agent_fleet import AgentProcess

    process = AgentProcess(tmp_path / "dev-a", broker, world)
    yield process
    process.kill()
