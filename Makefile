# The one entry point. `make demo` and `make test` work from a fresh clone: they create the
# virtual environment, install what is needed and build the extension first.

PYTHON ?= python3
VENV := .venv
BIN := $(abspath $(VENV))/bin
# Cargo artifacts live outside the clone so that fresh clones on the same machine reuse them.
export CARGO_TARGET_DIR ?= $(HOME)/.cache/edgewise/cargo-target
export VIRTUAL_ENV := $(abspath $(VENV))
export PATH := $(BIN):$(PATH)

.PHONY: help dev demo test lint format test-rust test-python build-deps system-deps bench clean

help:
	@echo "make demo   set up and run the demo"
	@echo "make test   set up, lint, and run the Rust and Python test suites"
	@echo "make dev    set up the virtual environment and build the extension (release)"
	@echo "make bench  run the benchmarks against pandas+scikit-learn and polars+onnxruntime"

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip "maturin>=1.9,<2"
	touch $@

# compileall: an editable install has no bytecode, and without it (PYTHONDONTWRITEBYTECODE=1)
# every command compiles each module again, about 20 ms of `edgewise score` start-up.
dev: $(VENV)/.installed build-deps
	$(BIN)/maturin develop --release --quiet --extras dev,control
	$(BIN)/python -m compileall -q python/edgewise

demo: dev
	$(BIN)/edgewise demo

lint: dev
	$(BIN)/ruff check python tests benches
	$(BIN)/ruff format --check python tests benches
	$(BIN)/mypy
	$(BIN)/python -m mypy.stubtest edgewise._core --allowlist .stubtest-allowlist
	cargo fmt --all --check
	cargo clippy --release --all-targets --locked -- -D warnings

format: dev
	$(BIN)/ruff check --fix python tests benches
	$(BIN)/ruff format python tests benches
	cargo fmt --all

test-rust: build-deps
	cargo test --release --locked

# Debian packages the build needs (OpenSSL headers), and those plus what the tests run for real
# (a headless browser, Mosquitto, PostgreSQL); each installs only what is missing.
build-deps:
	bash tests/system_deps.sh build

system-deps:
	bash tests/system_deps.sh test

test-python: dev system-deps
	$(BIN)/python -m pytest -m "not slow"

test: lint test-rust test-python

bench: dev
	$(BIN)/python benches/score_vs_peers.py

clean:
	rm -rf $(VENV) python/edgewise/*.so .pytest_cache .mypy_cache .ruff_cache
