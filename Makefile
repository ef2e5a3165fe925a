# PromptMID for QGIS. `make install` once (Debian 12, as root or with sudo), then demo / test / bench.
VENV ?= .venv
PY := $(VENV)/bin/python
DATA ?= ../shared/data/optical-sar
OUT ?= out
export QT_QPA_PLATFORM ?= offscreen

.PHONY: install demo test bench peers clean train-default train-lite package screenshots calibrate calibrate-engines device-kit device-dry-run

install:
	bash scripts/install.sh

demo:
	$(VENV)/bin/promptmid demo --data $(DATA) -o $(OUT)/demo

test:
	$(PY) -m pytest -q tests

# Benchmark peers live in their own venvs: AROSICS in .venv-peers (requirements-peers.txt), Pandora2D in
# .venv-pandora2d (requirements-pandora2d.txt).
peers:
	bash scripts/install_peers.sh

bench: peers
	$(PY) scripts/bench.py $(DATA)/test --out bench/results
	$(PY) scripts/bench_large.py $(DATA)/test --out bench/results

clean:
	rm -rf $(OUT) .pytest_cache build dist

# Verdict thresholds from the TRAIN split only (both protocols).
# The default model's own thresholds, on all 167 train pairs per protocol (~10 min), one set per search mode
# and image size class (256 px tiles / 512 px work grids), stored in its .json (the engine uses them):
calibrate:
	$(PY) scripts/calibrate_verdict.py $(DATA)/train --engine default --every-paper 1 --every-georef 1 --by-size \
		--out bench/results/verdict_calibration_dense.json --write-model resources/models/promptmid-dense.safetensors

# The engine-wide thresholds (lite, classical, area and any model without its own), measured on the lite
# engine on every second train pair (~10 min); the defaults in core/promptmid/verdict.py are copied from
# bench/results/verdict_calibration.json.
calibrate-engines:
	$(PY) scripts/calibrate_verdict.py $(DATA)/train --engine lite --out bench/results/verdict_calibration.json

# The shipped CPU model (engines `default` and `dense`): lite network whose maps drive the search and the
# templates, trained with the translation-correlation losses (seeded; 18 min on one CPU thread). Train split
# only; validation on the held-out fifth of its scene groups.
train-default:
	mkdir -p resources/models
	$(VENV)/bin/promptmid train descriptor $(DATA)/train --objective dense --dense-maps residual --size small --steps 2500 \
		--batch 2 --lr 5e-3 --point-weight 0.1 --crop 160 --val-fraction 0.2 --seed 0 \
		--out resources/models/promptmid-dense.safetensors --card resources/models/MODEL_CARD.md -q

# The earlier shipped model (engine `lite`): descriptors trained on points only (seeded; ~40 min on 2 cores).
train-lite:
	mkdir -p resources/models
	$(VENV)/bin/promptmid train descriptor $(DATA)/train --profile lite --steps 2800 --batch 2 --lr 3e-3 --crop 192 \
		--seed 0 --out resources/models/promptmid-lite.safetensors --card resources/models/MODEL_CARD_LITE.md -q

package:
	$(PY) scripts/package.py

screenshots:
	$(PY) scripts/screenshots.py docs/screenshots --data $(DATA)

# The .points file in the real QGIS Georeferencer (desktop under Xvfb; needs apt-get install qgis xvfb openbox imagemagick).
.PHONY: gui-check
gui-check:
	$(PY) scripts/gui_check.py --data $(DATA) --out $(OUT)/gui-check

# The full engine at real size with random weights (SD 1.5 + ControlNet, DINOv2-base, VGG19; ~6.6 GB written
# under /tmp and deleted after) on a 512 px pair, on CPU with one thread, niced: time and peak memory in
# out/full-size-check. Not part of `make test`. FULL_SIZE_ARGS="--keep" keeps the model directory for a rerun.
.PHONY: full-size-check
full-size-check:
	nice -n 10 $(PY) scripts/full_size_check.py --data $(DATA) --threads 1 --out $(OUT)/full-size-check $(FULL_SIZE_ARGS)

# A GPU lease (device tool) for the dense model's training and the full profile's fp16 timing: pack the train
# part of the train split and the wheels the GPU image lacks into .device/ (git-ignored), then try the whole
# session on CPU with tiny settings. scripts/device/session.py's docstring has the one command to run there.
device-kit:
	$(PY) scripts/device/pack_train.py $(DATA)/train --out .device

device-dry-run: device-kit
	$(PY) scripts/device/session.py --device cpu --minutes 0.3 --probe-steps 3 --workers 2 --limit-pairs 12 \
		--full-spec tiny --out $(OUT)/device-dry-run

