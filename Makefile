# Quick start: `make demo` (set up, then segment the bundled example image with a click)
#              `make test` (set up, then run the test suite CI runs)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SHARED ?= ../shared
PARITY := $(SHARED)/fixtures/parity
DEMO_OUT ?= out/demo

.PHONY: setup demo test test-all bench clean train-synthetic

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install -q -e ".[dev]"
	touch $@

setup: $(BIN)/.installed

# Official sam2.1_hiera_tiny weights when they can be had (cache, $$SAMSTREAM_CHECKPOINT or a
# download); offline (exit code 3) it falls back to the bundled samstream-synthetic model,
# trained here (see README "Training"), which ships inside the package.
demo: setup
	@$(BIN)/samstream segment src/samstream/assets/cat.jpg --point 150,120 --model sam2.1_hiera_tiny --out $(DEMO_OUT) --overwrite; \
	rc=$$?; \
	if [ $$rc -eq 3 ]; then \
	  echo "demo: official weights unavailable here; using the bundled model samstream-synthetic"; \
	  $(BIN)/samstream segment src/samstream/assets/cat.jpg --point 150,120 --model samstream-synthetic --out $(DEMO_OUT) --overwrite; \
	else exit $$rc; fi

# The bundled model's training run (README "Training"), nine stages, about 11 hours on 2 CPU cores;
# the weights end in runs/samstream-synthetic/stage9/final/model.safetensors.
train-synthetic: setup
	$(BIN)/samstream train --config configs/train/samstream_synthetic_stage1.yaml
	$(BIN)/samstream train --config configs/train/samstream_synthetic_stage2.yaml
	$(BIN)/samstream train --config configs/train/samstream_synthetic_stage3.yaml
	$(BIN)/samstream train --config configs/train/samstream_synthetic_stage4.yaml
	$(BIN)/samstream train --config configs/train/samstream_synthetic_stage5.yaml
	$(BIN)/samstream train --config configs/train/samstream_synthetic_stage6.yaml
	$(BIN)/samstream train --config configs/train/samstream_synthetic_stage7.yaml
	$(BIN)/samstream train --config configs/train/samstream_synthetic_stage8.yaml
	$(BIN)/samstream train --config configs/train/samstream_synthetic_stage9.yaml

test: setup
	$(BIN)/python -m pytest -q

test-all: setup
	$(BIN)/python -m pytest -q -m "slow or not slow"

clean:
	rm -rf $(VENV) out .pytest_cache
