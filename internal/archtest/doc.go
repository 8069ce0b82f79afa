// Package archtest holds the repository's architecture tests: the dependency
// direction of ARCHITECTURE.md §1 and the rule that every package has a doc
// comment. It has no code of its own.
package archtest
