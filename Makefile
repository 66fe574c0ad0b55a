# The two commands of the README. Both set up what they need first (scripts/setup.sh is idempotent).
SCALE ?= tiny
VENV ?= .venv
SMOLBOOK := $(VENV)/bin/smolbook

.PHONY: book test test-fast setup setup-test
book: setup
	$(SMOLBOOK) run --scale $(SCALE)
	$(SMOLBOOK) site --run runs/$(SCALE)

test: setup-test
	# the import contracts of .importlinter (no cycles inside a package; the foundations import nothing above them)
	$(VENV)/bin/lint-imports
	# one torch thread per pytest worker: two workers on two cores, no oversubscription
	OMP_NUM_THREADS=1 $(VENV)/bin/python -m pytest -n 2 --dist loadfile --durations=25

# the quick loop: no notebooks, clusters, servers or browsers (tests/conftest.py's SLOW_FILES)
test-fast: setup-test
	$(VENV)/bin/lint-imports
	OMP_NUM_THREADS=1 $(VENV)/bin/python -m pytest -n 2 --dist loadfile -m "not slow" -q

setup:
	@bash scripts/setup.sh

setup-test:
	@bash scripts/setup.sh --test
