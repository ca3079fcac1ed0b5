# Convenience targets; each one is a thin wrapper around a script.
.PHONY: bootstrap test test-quick run audit docs lab-build lab-up lab-down lab-ssh lab-status

bootstrap:
	scripts/bootstrap
test:
	scripts/test
test-quick:
	scripts/test --quick
run:
	scripts/run
docs:
	python3 scripts/gen_docs.py
lab-build:
	lab/lab build
lab-up:
	lab/lab up
lab-down:
	lab/lab down
lab-ssh:
	lab/lab ssh
lab-status:
	lab/lab status
