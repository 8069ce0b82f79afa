package attack

import (
	"fmt"
	"sort"
)

// Techniques are the ATT&CK for ICS (v18.1) technique ids the lab uses, with
// their names (REFERENCE.md Appendix A). Steps naming any other id are
// refused, so that a misspelt id cannot silently score as a miss.
var Techniques = map[string]string{
	"T0800": "Activate Firmware Update Mode",
	"T0803": "Block Command Message",
	"T0804": "Block Reporting Message",
	"T0807": "Command-Line Interface",
	"T0809": "Data Destruction",
	"T0811": "Data from Information Repositories",
	"T0812": "Default Credentials",
	"T0813": "Denial of Control",
	"T0814": "Denial of Service",
	"T0815": "Denial of View",
	"T0816": "Device Restart/Shutdown",
	"T0819": "Exploit Public-Facing Application",
	"T0822": "External Remote Services",
	"T0826": "Loss of Availability",
	"T0827": "Loss of Control",
	"T0828": "Loss of Productivity and Revenue",
	"T0829": "Loss of View",
	"T0830": "Adversary-in-the-Middle",
	"T0831": "Manipulation of Control",
	"T0832": "Manipulation of View",
	"T0836": "Modify Parameter",
	"T0837": "Loss of Protection",
	"T0838": "Modify Alarm Settings",
	"T0839": "Module Firmware",
	"T0840": "Network Connection Enumeration",
	"T0842": "Network Sniffing",
	"T0843": "Program Download",
	"T0846": "Remote System Discovery",
	"T0847": "Replication Through Removable Media",
	"T0848": "Rogue Master",
	"T0855": "Unauthorized Command Message",
	"T0856": "Spoof Reporting Message",
	"T0857": "System Firmware",
	"T0858": "Change Operating Mode",
	"T0859": "Valid Accounts",
	"T0860": "Wireless Compromise",
	"T0862": "Supply Chain Compromise",
	"T0864": "Transient Cyber Asset",
	"T0866": "Exploitation of Remote Services",
	"T0867": "Lateral Tool Transfer",
	"T0878": "Alarm Suppression",
	"T0880": "Loss of Safety",
	"T0881": "Service Stop",
	"T0882": "Theft of Operational Information",
	"T0886": "Remote Services",
	"T0887": "Wireless Sniffing",
	"T0888": "Remote System Information Discovery",
	"T0890": "Exploitation for Privilege Escalation",
	"T0891": "Hardcoded Credentials",
	"T0892": "Change Credential",
	"T0893": "Data from Local System",
}

// Tactics are the ATT&CK for ICS tactic ids with their names.
var Tactics = map[string]string{
	"TA0100": "Collection",
	"TA0101": "Command and Control",
	"TA0102": "Discovery",
	"TA0103": "Evasion",
	"TA0104": "Execution",
	"TA0105": "Impact",
	"TA0106": "Impair Process Control",
	"TA0107": "Inhibit Response Function",
	"TA0108": "Initial Access",
	"TA0109": "Lateral Movement",
	"TA0110": "Persistence",
	"TA0111": "Privilege Escalation",
}

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
