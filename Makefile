# The two commands of the README: `make run` and `make test`. Both set up .venv on first use.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000

.PHONY: run test dev model ablation sizing clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Stamp files make re-runs skip the install until the requirements change.
$(VENV)/.serve: requirements.txt constraints.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt constraints.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@ $(VENV)/.serve

run: $(VENV)/.serve
	@echo "Serving on http://localhost:$(PORT)/"
	PORT=$(PORT) $(BIN)/gunicorn --config gunicorn.conf.py "app:create_app()"

test: $(VENV)/.dev
	$(BIN)/python -m pytest -q

# The training side's environment alone (what `make test` sets up before it runs the tests).
dev: $(VENV)/.dev

# The bundled models, end to end (see README, "Training"): the reader's stages (model/recipe.json:
# a first reader on the labelled photos, then readers that also learn from the unlabelled photos
# an earlier stage reads confidently, MNIST handwriting and font-rendered numbers, a second, regularised
# line of them that learns again from both lines averaged, the average of both lines' last readers;
# the pad's drawing reader), then the localiser; exported with int8 weights, calibrated, scored and
# reported.
SVHN ?= data/svhn
UNLABELLED ?= data/svhn_unlabeled
MNIST ?= data/mnist
model: $(VENV)/.dev
	$(BIN)/python -m model.train --recipe model/recipe.json --data $(SVHN) --unlabelled $(UNLABELLED) --mnist $(MNIST)
	$(BIN)/python -m model.train_locator --data $(SVHN) --mnist $(MNIST) --out runs/locator --quiet
	$(BIN)/python -m model.export --run runs/locator --out model/locator.tflite --quantize dynamic
	$(BIN)/python -m model.calibrate --val-of runs/locator
	$(BIN)/python -m model.evaluate --data $(SVHN)/test --mnist $(MNIST) --report model/report/test.json
	$(BIN)/python -m model.report --eval model/report/test.json --runs runs/base runs/stage2 runs/stage3 runs/stage4 runs/reg runs/reg2 runs/reg3 runs/reg4 runs/swa \
		$(wildcard $(addprefix runs/ablate-,$(ABLATIONS)) $(addprefix runs/size-,narrow bundled wide))

# One means at a time, on validation (model/report/README.md, "What each means added"): each run
# continues stage2 for 8 epochs with stage2's own mix, changing one thing; "longer" changes nothing,
# so it tells what more training alone is worth. Needs runs/stage2 and both pseudo-label files of `model`.
ABLATE = $(BIN)/python -m model.train --data $(SVHN) --init runs/stage2/best.keras --epochs 8 --lr 0.001 --quiet \
	--mnist $(MNIST) --synth-fraction 0.4 --handwriting-fraction 0.1 --pseudo-fraction 0.25
ABLATIONS = longer fonts refresh handwriting blank noaugment norecombined
ablation: $(VENV)/.dev
	$(ABLATE) --pseudo runs/pseudo-base.json --out runs/ablate-longer
	$(ABLATE) --pseudo runs/pseudo-base.json --out runs/ablate-fonts --synth-fraction 0.3 --font-fraction 0.1
	$(ABLATE) --pseudo runs/pseudo-stage2.json --out runs/ablate-refresh
	$(ABLATE) --pseudo runs/pseudo-base.json --out runs/ablate-handwriting --synth-fraction 0.3 --handwriting-fraction 0.2
	$(ABLATE) --pseudo runs/pseudo-base.json --out runs/ablate-blank --synth-fraction 0.35 --blank-fraction 0.05
	$(ABLATE) --pseudo runs/pseudo-base.json --out runs/ablate-noaugment --augment false
	$(ABLATE) --pseudo runs/pseudo-base.json --out runs/ablate-norecombined --synth-fraction 0

# The network's size, on validation: three widths trained from scratch with the base mix for the same
# 12 epochs (a fixed budget, short of the 50 of the base run: it compares the sizes, not their best).
SIZE = $(BIN)/python -m model.train --data $(SVHN) --epochs 12 --quiet
sizing: $(VENV)/.dev
	$(SIZE) --widths 16,32,64,96 --out runs/size-narrow
	$(SIZE) --widths 32,64,128,192 --out runs/size-bundled
	$(SIZE) --widths 40,80,160,240 --out runs/size-wide

clean:
	rm -rf $(VENV) .pytest_cache
