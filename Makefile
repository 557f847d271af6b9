# The two commands of the README: `make run` and `make test`. Both set up .venv on first use.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000

.PHONY: run test model clean

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

# The bundled models, end to end (see README, "Training"): a first reader on the labelled photos,
# its confident readings of the unlabelled photos, then a second reader that also learns from
# those and from MNIST handwriting; then the localiser; exported with int8 weights, scored and reported.
SVHN ?= data/svhn
UNLABELLED ?= data/svhn_unlabeled
MNIST ?= data/mnist
model: $(VENV)/.dev
	$(BIN)/python -m model.train --data $(SVHN) --out runs/base --quiet
	$(BIN)/python -m model.export --run runs/base --out runs/base/model.tflite
	$(BIN)/python -m model.pseudo --model runs/base/model.tflite --data $(UNLABELLED) --out runs/pseudo-base.json
	$(BIN)/python -m model.train --data $(SVHN) --out runs/stage2 --mnist $(MNIST) --pseudo runs/pseudo-base.json \
		--synth-fraction 0.4 --pseudo-fraction 0.25 --handwriting-fraction 0.1 --quiet
	$(BIN)/python -m model.export --run runs/stage2 --quantize dynamic --test-data $(SVHN)/test
	$(BIN)/python -m model.train_locator --data $(SVHN) --mnist $(MNIST) --out runs/locator --quiet
	$(BIN)/python -m model.export --run runs/locator --out model/locator.tflite --quantize dynamic
	$(BIN)/python -m model.calibrate --val-of runs/locator
	$(BIN)/python -m model.evaluate --data $(SVHN)/test --mnist $(MNIST) --report model/report/test.json
	$(BIN)/python -m model.report --eval model/report/test.json --runs runs/base runs/stage2

clean:
	rm -rf $(VENV) .pytest_cache
