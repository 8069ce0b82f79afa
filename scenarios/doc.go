// Package scenarios holds the attack (ATK-xx) and control (CTL-xx) scenarios
// of the lab as Ginkgo specs in plain .go files, so that the pumplab binary
// carries them (pumplab run) and go test ./scenarios/... and the ginkgo CLI
// run the same specs. Scenario IDs and content follow REFERENCE.md §3.
package scenarios
