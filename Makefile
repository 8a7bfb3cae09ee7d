# Two commands do everything on a fresh machine:  make demo   |   make test
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
STAMP := $(VENV)/.mepr-installed
CORES ?= 2
# Rules call `python -m mepr ...`: put the venv first so they find it.
export PATH := $(BIN):$(PATH)

.PHONY: setup demo test lint dry-run clean identity

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	bash workflow/scripts/install-system-deps.sh
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install --quiet -e '.[dev,slurm]'
	touch $@

demo: setup
	$(BIN)/snakemake --cores $(CORES) results/fusion/metrics.json

test: setup
	-bash workflow/scripts/install-test-deps.sh  # chromium for the report tests (skipped without it)
	$(BIN)/pytest

lint: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/snakefmt --check Snakefile workflow/rules
	$(BIN)/snakemake --lint

dry-run: setup
	$(BIN)/snakemake -n results/fusion/metrics.json

clean:
	rm -rf results .snakemake

# The demo's outputs against the recorded digests (tests/data/identity.json), in a fresh folder:
# for reshapes that must not change behaviour. `... record` after an intended change.
# The baseline holds on the machine it was recorded on; elsewhere `make identity BASE=REV` runs
# commit REV here too (a worktree) and compares the two runs.
IDENTITY_DIR ?= /tmp/mepr-identity
IDENTITY_TARGETS = results/fusion/metrics.json results/predict/demo/index.html
identity: setup
	rm -rf $(IDENTITY_DIR) && mkdir -p $(IDENTITY_DIR)
	$(BIN)/snakemake --cores $(CORES) --snakefile $(CURDIR)/Snakefile --directory $(IDENTITY_DIR) \
		$(IDENTITY_TARGETS)
ifdef BASE
	rm -rf $(IDENTITY_DIR)-base $(IDENTITY_DIR)-tree && mkdir -p $(IDENTITY_DIR)-base
	git worktree add --detach $(IDENTITY_DIR)-tree $(BASE)
	PYTHONPATH=$(IDENTITY_DIR)-tree/src $(BIN)/snakemake --cores $(CORES) \
		--snakefile $(IDENTITY_DIR)-tree/Snakefile --directory $(IDENTITY_DIR)-base $(IDENTITY_TARGETS)
	git worktree remove --force $(IDENTITY_DIR)-tree
	$(BIN)/python workflow/scripts/identity.py compare $(IDENTITY_DIR)/results $(IDENTITY_DIR)-base/results
else
	$(BIN)/python workflow/scripts/identity.py check $(IDENTITY_DIR)/results
endif
