# pumplab — the README's commands are these targets.
GO       ?= go
PKGS     ?= ./...
OUT      ?= out

.PHONY: run test build vet fmt fuzz bench clean

## run: run the scenario suite on the in-process lab and write the reports to out/
run:
	$(GO) run ./cmd/pumplab run --out $(OUT)

## test: every test (vet, gofmt, race-enabled unit tests, Ginkgo scenario suite)
test: vet
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	$(GO) test -race -count=1 -timeout 45m $(PKGS)

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/pumplab ./cmd/pumplab

vet:
	$(GO) vet $(PKGS)

fmt:
	gofmt -w $$(git ls-files '*.go')

## fuzz: run every fuzz target for FUZZTIME each (default 30s)
FUZZTIME ?= 30s
fuzz:
	./scripts/fuzz-all.sh $(FUZZTIME)

## bench: fleet benchmark (N pumps, 1 status/s each)
PUMPS ?= 1000
bench:
	$(GO) run ./cmd/pumplab bench --pumps $(PUMPS)

clean:
	rm -rf bin $(OUT)
