package attack

import (
	"fmt"
	"sort"

	"github.com/pumplab/pumplab/harness/attck"
)

// Techniques are the ATT&CK for ICS (v18.1) technique ids the lab uses, with
// their names (REFERENCE.md Appendix A; one table for the whole harness, in
// harness/attck). Steps naming any other id are refused, so that a misspelt
// id cannot silently score as a miss.
var Techniques = attck.Techniques

// Tactics are the ATT&CK for ICS tactic ids.
var Tactics = attck.Tactics

// CheckTechniques returns an error naming the first id that is not in
// Techniques; at least one id is required.
func CheckTechniques(ids ...string) error {
	if len(ids) == 0 {
		return fmt.Errorf("attack: techniques: none given (need at least one of %d ATT&CK for ICS ids)", len(Techniques))
	}
	for _, id := range ids {
		if _, ok := Techniques[id]; !ok {
			return fmt.Errorf("attack: technique %q: not an ATT&CK for ICS id known to the lab (see attack.Techniques)", id)
		}
	}
	return nil
}

// CheckTactic returns an error when id is not in Tactics.
func CheckTactic(id string) error {
	if _, ok := Tactics[id]; !ok {
		ids := make([]string, 0, len(Tactics))
		for k := range Tactics {
			ids = append(ids, k)
		}
		sort.Strings(ids)
		return fmt.Errorf("attack: tactic %q: not an ATT&CK for ICS tactic id (%s..%s)", id, ids[0], ids[len(ids)-1])
	}
	return nil
}
