# The two commands of the README:
#   make demo   set up .venv (CPU torch) and run the main job on the embedded demo data
#   make test   set up .venv and run the test suite
# Cluster users: see environment.yml and slurm/README.md.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
DEMO_OUT ?= demo_out
EXTRAS  ?= analysis,cluster,notebooks,test,tracking

.PHONY: setup demo test test-fast notebooks clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# torch first: `torch==2.13.0` is the local CPU build; a plain `torch` would pull CUDA (GBs).
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[$(EXTRAS)]"
	touch $@

setup: $(VENV)/.installed
	@# notebooks: git stores them without outputs (.gitattributes; crisscross_core/viz/nbclean.py)
	@if git rev-parse --git-dir >/dev/null 2>&1; then \
	  git config filter.nbclean.clean "$(abspath $(BIN))/python -m crisscross_core.viz.nbclean %f"; \
	  git config filter.nbclean.required false; fi
	@mkdir -p $(VENV)/etc/jupyter/jupyter_server_config.d && printf '%s\n' \
	  '{"ContentsManager": {"pre_save_hook": "crisscross_core.viz.nbclean.pre_save_hook"}}' \
	  > $(VENV)/etc/jupyter/jupyter_server_config.d/crisscross-nbclean.json

demo: setup
	$(BIN)/crisscross demo --out $(DEMO_OUT)

test: setup
	$(BIN)/python -m pytest -q -ra tests

test-fast: setup
	$(BIN)/python -m pytest -q -ra -m "not slow and not slurm" tests

notebooks: setup
	$(BIN)/python -m jupytext --sync notebooks/*.py

clean:
	rm -rf $(DEMO_OUT) runs .pytest_cache
