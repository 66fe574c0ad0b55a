# The two commands of the README. Both set up what they need first (scripts/setup.sh is idempotent).
SCALE ?= tiny
VENV ?= .venv
SMOLBOOK := $(VENV)/bin/smolbook

.PHONY: book test setup setup-test
book: setup
	$(SMOLBOOK) run --scale $(SCALE)
	$(SMOLBOOK) site --run runs/$(SCALE)

test: setup-test
	# one torch thread per pytest worker: two workers on two cores, no oversubscription
	OMP_NUM_THREADS=1 $(VENV)/bin/python -m pytest -n 2 --dist loadfile --durations=25

setup:
	@bash scripts/setup.sh

setup-test:
	@bash scripts/setup.sh --test
