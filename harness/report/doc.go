// Package report turns a scored run into the files of its run directory
// out/<run-id>/ (docs/reports.md): scorecard.json (versioned, schema in
// docs/scorecard.schema.json), summary.md, navigator-layer.json (ATT&CK
// Navigator layer for ics-attack), ground-truth.jsonl, alerts.jsonl and
// report.html, one self-contained page.
//
// Build makes a Scorecard from plain inputs and sorts everything, so the
// same inputs always give byte-identical files. Everything is pure except
// Write, the one function that touches the file system. The package imports
// no Ginkgo or Gomega: junit.xml is written by Ginkgo elsewhere.
package report
