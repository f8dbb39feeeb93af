# Set-up and everyday commands. `make install` builds .venv from nothing; everything else uses it.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
TEAM   ?=
TRACK  ?= fixed-ipc

.PHONY: install bwrap test test-fast demo demo-digits demo-cross demo-soft submit run leaderboard bench clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	# constraints.txt pins a torch/torchvision pair that import together
	$(BIN)/pip install -c constraints.txt -e '.[test]'
	$(BIN)/python -c "import torch, torchvision, timm, diffusers, transformers, accelerate; print('torch', torch.__version__, 'torchvision', torchvision.__version__)"
	@$(MAKE) --no-print-directory bwrap
	touch $(STAMP)

# bubblewrap sandboxes generators; installed with apt where we are root, else say how.
bwrap:
	@if command -v bwrap >/dev/null 2>&1; then echo "bwrap: $$(command -v bwrap)"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing bubblewrap with apt (waiting up to 10 min if another apt holds its lock)"; \
	  apt-get -o DPkg::Lock::Timeout=600 update -qq && apt-get -o DPkg::Lock::Timeout=600 install -y -qq bubblewrap; \
	else echo "bwrap missing: install it with 'sudo apt-get install -y bubblewrap' (needed for the generative track)"; fi

test: install
	$(BIN)/python -m pytest -q --durations=15

# The unit tier only: one module at a time, in this process; a test that starts a process fails.
test-fast: install
	$(BIN)/python -m pytest -q tests/unit

# $(call demo_on,DATASET,EXTRA): every shipped submission of both tracks, the reference rows, then
# the leaderboard, full protocol, CPU. Already-evaluated entries are skipped.
define demo_on
	$(BIN)/bench run --track fixed-ipc --dataset $(1) $(2)
	$(BIN)/bench run --track generative --dataset $(1) $(2)
	$(BIN)/bench baseline random --dataset $(1) $(2)
	$(BIN)/bench baseline full --dataset $(1) $(2)
	$(BIN)/bench leaderboard
endef

# The main job, on photodigits (built from scikit-learn on first use).
demo: install
	$(call demo_on,photodigits)

# The same on the embedded digits, the quick smoke set (its anytime curves included).
demo-digits: install
	$(call demo_on,digits)

# Every network of the cross-architecture set on the same digits images (long on a CPU: see README).
demo-cross: install
	$(call demo_on,digits,--arch cross)

# The soft-label division on photodigits: the harness's teacher (trained once, about 3 min on
# 2 cores), the shipped stored and online submissions, their hard-label twins, the references.
demo-soft: install
	$(BIN)/bench run --track soft-label --dataset photodigits
	$(BIN)/bench leaderboard

submit: install
	@test -n "$(TEAM)" || { echo "usage: make submit TEAM=<folder under submissions/>"; exit 2; }
	$(BIN)/bench submit $(TEAM)

run: install
	$(BIN)/bench run --track $(TRACK)

leaderboard: install
	$(BIN)/bench leaderboard

bench: install
	$(BIN)/python perf/train_throughput.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
