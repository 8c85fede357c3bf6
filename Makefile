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
RELEASE_DIR ?= dist/release
RELEASE_URL ?= file://$(abspath $(RELEASE_DIR))

.PHONY: env demo test bench clean pacs-tools release

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

# The release artifacts (scripts/release.py): the monai-ext wheel, <bundle>_v<version>.zip per bundle and model_info.json
# in $(RELEASE_DIR), sources under $(RELEASE_URL); for a GitHub release pass
#   RELEASE_URL=https://github.com/<owner>/<repo>/releases/download/<tag>
# and upload the folder's files to <tag>. Updates bundles/releases.json (the version bump rule's record): commit it.
release: $(STAMP)
	$(PY) -m scripts.release --out $(RELEASE_DIR) --base-url $(RELEASE_URL)

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

# A real PACS and an independent DICOM toolkit for tests/serve/test_orthanc_pacs.py (skipped without them): Debian's
# Orthanc 1.10 with its DICOMweb plugin and DCMTK (dsrdump). Needs apt-get and root, as on the CI machine.
pacs-tools:
	@if command -v Orthanc >/dev/null && command -v dsrdump >/dev/null && test -d /usr/share/orthanc/plugins; then \
		echo "Orthanc and DCMTK are installed"; \
	else \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q orthanc orthanc-dicomweb dcmtk; \
	fi

clean:
	rm -rf $(VENV) $(ML_VENV) $(DEMO_DIR) .pytest_cache

# The MONAI Label app (scripts/monailabel_app) runs in its own environment, never in $(VENV): monailabel 0.8.5 pins
# numpy<2 and jsonschema<4 (through pydicom-seg) and builds sam2 from source. It is installed without its declared
# dependencies, beside the project, with the server's runtime dependencies ($(ML_APP)/requirements.txt says which
# are left out and why) and a stand-in for pydicom-seg ($(ML_APP)/compat, put on the venv's path by a .pth file).
ML_VENV ?= .venv-monailabel
ML_PY := $(ML_VENV)/bin/python
ML_STAMP := $(ML_VENV)/.installed
ML_APP := scripts/monailabel_app
ML_PIP := $(ML_PY) -m pip install --quiet --disable-pip-version-check

.PHONY: monailabel-env test-monailabel

monailabel-env: $(ML_STAMP)

$(ML_STAMP): pyproject.toml $(ML_APP)/requirements.txt
	test -x $(ML_PY) || $(PYTHON) -m venv $(ML_VENV)
	echo '*' > $(ML_VENV)/.gitignore
	$(ML_PIP) $(TORCH_SPEC)
	$(ML_PIP) -e .
	$(ML_PIP) -r $(ML_APP)/requirements.txt
	$(ML_PIP) --no-deps monailabel==0.8.5
	echo "$(CURDIR)/$(ML_APP)/compat" > "$$($(ML_PY) -c 'import sysconfig; print(sysconfig.get_path("purelib"))')/rmb_monailabel_compat.pth"
	$(ML_PY) -c "import monailabel.app, monai_ext, numpy; print('monailabel', monailabel.__version__, 'numpy', numpy.__version__)"
	touch $(ML_STAMP)

test-monailabel: $(STAMP) $(ML_STAMP)
	$(PY) -m pytest -q tests/serve/test_monailabel_app.py
