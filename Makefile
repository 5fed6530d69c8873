# M2MRSP — make targets. `make test` is what CI runs (.ci/run); `make demo` shows what exists.
SWIFT ?= swift
SHELL := /bin/bash

.PHONY: all bootstrap build release test check-generated generate demo bench clean

all: build

bootstrap:
	@scripts/bootstrap.sh

build: bootstrap
	$(SWIFT) build

release: bootstrap
	$(SWIFT) build -c release --product m2mrsp

# The whole suite: generated code up to date, every Swift test (xmllint and openssl checks included),
# then the Lua policy bundles' own tests through the same sandbox as production, then an SM-SR
# process killed mid-enable and recovered against an emulated fleet in another process, then
# `m2mrsp serve` and `m2mrsp call` over mutual TLS on loopback, an SM-SR change whose new SM-SR
# process is killed after the commit point and restarted, the demo's scenario, and every v3
# function driven by zeep (a stock WSDL-driven SOAP client, pip-installed into a cache venv) with
# GSMA's WSDLs, its captured traffic validated by xmllint against the schema.
test: bootstrap check-generated
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build
	$(SWIFT) run --skip-build m2mrsp policy test plugins policies
	M2MRSP_BIN=$$($(SWIFT) build --show-bin-path)/m2mrsp bash scripts/crash-test.sh
	M2MRSP_BIN=$$($(SWIFT) build --show-bin-path)/m2mrsp bash scripts/serve-test.sh
	M2MRSP_BIN=$$($(SWIFT) build --show-bin-path)/m2mrsp bash scripts/change-crash-test.sh
	M2MRSP_BIN=$$($(SWIFT) build --show-bin-path)/m2mrsp bash scripts/demo-scenario.sh
	M2MRSP_BIN=$$($(SWIFT) build --show-bin-path)/m2mrsp bash scripts/interop-test.sh

# Regenerate message types, Action tables, v4 XSD and golden files from scripts/messages.py.
generate:
	python3 scripts/gen_messages.py

# Fails when the committed generated files differ from what the generator writes.
check-generated:
	@python3 scripts/gen_messages.py >/dev/null
	@if [ -n "$$(git status --porcelain -- Sources/M2MSOAP/Messages Sources/M2MSOAP/Actions xsd/m2mrsp-v4.xsd xsd/m2mrsp Tests/M2MSOAPTests/Golden 2>/dev/null)" ]; then \
		echo "check-generated: generated files differ from scripts/gen_messages.py output:"; \
		git status --porcelain -- Sources/M2MSOAP/Messages Sources/M2MSOAP/Actions xsd/m2mrsp-v4.xsd xsd/m2mrsp Tests/M2MSOAPTests/Golden | head -20; \
		exit 1; \
	fi
	@echo "check-generated: generated files are up to date"

# What exists, for real: SGP.02 envelopes round-tripped, a test PKI, the policy bundles' tests, an emulated
# fleet, SCP81, a real card's trace, an SM-DP inventory, the SOAP benchmark, then the platform's scenario over
# mutual TLS (scripts/demo-scenario.sh), serving until Ctrl-C when run from a terminal.
demo: release
	@scripts/demo.sh

bench: release
	@scripts/bootstrap.sh --bench
	.build/release/m2mrsp bench soap
	.build/release/m2mrsp bench crypto
	.build/release/m2mrsp bench policy
	.build/release/m2mrsp bench emulator
	.build/release/m2mrsp bench smsr
	.build/release/m2mrsp bench download
	.build/release/m2mrsp bench server

clean:
	rm -rf .build
