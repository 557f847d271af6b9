# The two commands of the README: `make run` and `make test`. Both set up .venv on first use.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000

.PHONY: run test train export evaluate clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Stamp files make re-runs skip the install until the requirements change.
$(VENV)/.serve: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@ $(VENV)/.serve

run: $(VENV)/.serve
	@echo "Serving on http://localhost:$(PORT)/"
	PORT=$(PORT) $(BIN)/gunicorn --config gunicorn.conf.py "app:create_app()"

test: $(VENV)/.dev
	$(BIN)/python -m pytest -q

# Training and scoring the bundled model (see README, "Training"); DATA is an SVHN folder.
DATA ?= ../shared/data/svhn
train: $(VENV)/.dev
	$(BIN)/python -m model.train --data $(DATA) --out runs/base

export: $(VENV)/.dev
	$(BIN)/python -m model.export --run runs/base --test-data $(DATA)/test

evaluate: $(VENV)/.dev
	$(BIN)/python -m model.evaluate --data $(DATA)/test --report model/report/test.json

clean:
	rm -rf $(VENV) .pytest_cache
