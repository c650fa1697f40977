# Two commands for a newcomer: `make demo` and `make test`. Both create .venv when it is missing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint venv native clean bench bench-quick

# the install also builds the optional native kernel of the tap statistics (a C compiler is all it needs)
$(STAMP): pyproject.toml attiqa/models/tapstats_native.c
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/pip install --quiet --upgrade pip > /dev/null 2>&1 || true
	@echo "installing attiqa and its dependencies into $(VENV) (log: $(VENV)/pip.log) ..."
	@$(BIN)/pip install --quiet -e ".[dev]" > $(VENV)/pip.log 2>&1 || (tail -30 $(VENV)/pip.log; exit 1)
	@touch $(STAMP)

venv: $(STAMP)

# rebuild the native kernel in place (an editable install does not rebuild it when the C source changes)
native: $(STAMP)
	$(BIN)/python -c "from setuptools import setup; setup()" build_ext --inplace

demo: $(STAMP)
	$(BIN)/attiqa demo --out runs/demo

# two passes: every test not marked `serial` in two pytest-xdist workers (one torch thread each, see
# tests/conftest.py), then the `serial` ones (torchrun ranks, kills timed against a run) alone; the second pass
# runs even when the first fails, so one log shows every failure, and either failing fails `make test`. Bytecode
# is written even where PYTHONDONTWRITEBYTECODE is set: else every Python process of the suite (the three
# collections of the test modules, each subprocess and torchrun rank) compiles attiqa's and the tests' sources again
# --no-loadscope-reorder: xdist hands out whole files in the order tests/file_order.py sorts them (the files with the
# most seconds at the last run first, from a record in .pytest_cache/)
test: $(STAMP)
	@status=0; export PYTHONDONTWRITEBYTECODE=; \
	$(BIN)/python -m pytest -q -n 2 --dist loadfile --no-loadscope-reorder -m "not serial" tests || status=$$?; \
	$(BIN)/python -m pytest -q -m serial tests || status=$$?; \
	exit $$status

lint: $(STAMP)
	$(BIN)/ruff check attiqa genbench isp_env tests benchmarks experiments
	$(BIN)/ruff format --check .  # also the Python blocks of README.md and docs/*.md
	$(BIN)/mypy attiqa isp_env genbench

bench: $(STAMP)
	$(BIN)/python benchmarks/score_throughput.py
	$(BIN)/python benchmarks/allocator.py
	$(BIN)/python benchmarks/fold_throughput.py
	$(BIN)/python benchmarks/label_throughput.py
	$(BIN)/python benchmarks/prompt_selection.py
	$(BIN)/python benchmarks/isp_speed.py
	$(BIN)/python benchmarks/isp_reward_batch.py

# the same scripts on a few inputs, one round each (a few minutes): that they run and print their ratio; the
# figures are `make bench`'s
bench-quick: $(STAMP)
	$(BIN)/python benchmarks/score_throughput.py --n 8 --rounds 1
	$(BIN)/python benchmarks/allocator.py --n 8 --rounds 1
	$(BIN)/python benchmarks/fold_throughput.py --n 8 --rounds 1
	$(BIN)/python benchmarks/label_throughput.py --n 8
	$(BIN)/python benchmarks/prompt_selection.py --images 50 --repeats 1
	$(BIN)/python benchmarks/isp_speed.py --width 1000 --height 750 --repeats 1
	$(BIN)/python benchmarks/isp_reward_batch.py --sizes 4 --batches 2 --rounds 1

clean:
	rm -rf runs .pytest_cache
