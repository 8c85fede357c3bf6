# Two set-up commands: `make demo` and `make test`. Both create .venv when it is missing.
# CPU machines without CUDA use the default TORCH_SPEC; on a GPU machine pick the wheel for your CUDA, e.g.
#   make test TORCH_SPEC="torch torchvision --index-url https://download.pytorch.org/whl/cu124"
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
STAMP := $(VENV)/.installed
DEMO_DIR ?= demo_data
DEMO_SIZE ?= 1.0

.PHONY: env demo test bench clean

env: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check $(TORCH_SPEC)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m monai_ext.demo --out $(DEMO_DIR) --size $(DEMO_SIZE) --summary
	$(PY) -m scripts.run_demo --demo-dir $(DEMO_DIR) --work-dir runs/demo

test: $(STAMP)
	$(PY) -m pytest -q tests

bench: $(STAMP)
	$(PY) -m scripts.bench_mombs_plan
	$(PY) -m scripts.bench_nvum --out bench_results/nvum --num-threads 1
	$(PY) -m scripts.bench_mombs --out bench_results/mombs --num-threads 1
	$(PY) -m scripts.bench_rop_step --out bench_results/rop --num-threads 1 --shipped-warmup 1 --shipped-repeats 3
	$(PY) -m scripts.bench_rop --out bench_results/rop
	$(PY) -m scripts.bench_cxr_lt_step --out bench_results/cxr_lt --num-threads 1 --shipped-warmup 1 --shipped-repeats 3
	$(PY) -m scripts.bench_cxr_lt --out bench_results/cxr_lt
	$(PY) -m scripts.bench_deeplesion_step --out bench_results/deeplesion --num-threads 1
	$(PY) -m scripts.bench_deeplesion --out bench_results/deeplesion

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache
