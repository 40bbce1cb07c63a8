# Long runs of the reliability suite (docs/reliability.md). The default test command
# (bash scripts/test.sh) runs a short version of each; these run them for real.
#
#   make soak   the player for SOAK_MINUTES on an accelerated programme, then the crash test
#               with CRASH_KILLS SIGKILLs, POWER_CUTS power cuts under the board's storage
#               (needs FUSE; skipped where it cannot mount) and NETFAULT_S seconds of network
#               faults
#   make fuzz   the fuzz targets with FUZZ_EXAMPLES hypothesis examples each, then each target
#               under atheris for ATHERIS_S seconds when atheris is installed
#   make test   the whole default suite (what CI runs)

PYTHON ?= .venv/bin/python
SOAK_MINUTES ?= 60
CRASH_KILLS ?= 200
POWER_CUTS ?= 300
NETFAULT_S ?= 600
FUZZ_EXAMPLES ?= 20000
ATHERIS_S ?= 120
ATHERIS_TARGETS ?= codec session bundle alert cap

.PHONY: test soak fuzz setup

setup:
	bash scripts/setup.sh --dev

test:
	bash scripts/test.sh

soak: setup
	$(PYTHON) -m tests.system.soak --minutes $(SOAK_MINUTES) --out soak.json
	SIGNAGE_CRASH_KILLS=$(CRASH_KILLS) $(PYTHON) -m pytest -q -s -p no:cacheprovider tests/system/test_crash.py
	SIGNAGE_POWERCUT_CUTS=$(POWER_CUTS) $(PYTHON) -m pytest -q -s -p no:cacheprovider tests/system/test_powercut.py
	SIGNAGE_NETFAULT_S=$(NETFAULT_S) $(PYTHON) -m pytest -q -s -p no:cacheprovider tests/system/test_network_faults.py

fuzz: setup
	SIGNAGE_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(PYTHON) -m pytest -q -s -p no:cacheprovider --hypothesis-show-statistics tests/system/test_fuzz.py
	@if $(PYTHON) -c 'import atheris' 2>/dev/null; then \
		for target in $(ATHERIS_TARGETS); do \
			$(PYTHON) tests/system/fuzz_atheris.py $$target -max_total_time=$(ATHERIS_S) || exit 1; \
		done; \
	else \
		echo "fuzz: atheris is not installed ($(PYTHON) -m pip install atheris): hypothesis only"; \
	fi
