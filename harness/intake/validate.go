package intake

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits of what the intake accepts. A request, frame or line beyond them is
// refused whole.
const (
	MaxBody      = 1 << 20 // bytes of one HTTP request body
	MaxBatch     = 1000    // alerts in one HTTP request
	MaxFrame     = 64 << 10
	MaxLine      = 1 << 20 // bytes of one line of a tailed file
	MaxToolLen   = 128     // tool name
	MaxShortLen  = 256     // severity, category, one asset, address, technique or tactic
	MaxTextLen   = 8 << 10 // text
	MaxRawLen    = 64 << 10
	MaxListItems = 64 // items of assets, addresses, techniques, tactics
)

var (
	techniqueRE = regexp.MustCompile(`^T\d{4}(\.\d{3})?$`)
	tacticRE    = regexp.MustCompile(`^TA\d{4}$`)
)

// DecodeError is a refused input: Path names the field ("alerts[3].techniques[0]",
// "SD pumplab@32473 technique", "body") and Msg what was wrong with it.
type DecodeError struct {
	Path string
	Msg  string
}

func (e *DecodeError) Error() string {
	if e.Path == "" {
		return e.Msg
	}
	return e.Path + ": " + e.Msg
}

func derr(path, format string, args ...any) *DecodeError {
	return &DecodeError{Path: path, Msg: fmt.Sprintf(format, args...)}
}

// quote shortens a value for an error message.
func quote(s string) string {
	if len(s) > 40 {
		s = s[:40] + "..."
	}
	return fmt.Sprintf("%q", strings.ToValidUTF8(s, "\uFFFD"))
}

// checkString checks a single-line string field: valid UTF-8, at most max
// bytes, no control characters.
func checkString(path, v string, max int, multiline bool) error {
	if len(v) > max {
		return derr(path, "%d bytes, more than the limit of %d", len(v), max)
	}
	if !utf8.ValidString(v) {
		return derr(path, "not valid UTF-8")
	}
	for _, r := range v {
		if unicode.IsControl(r) && !(multiline && (r == '\n' || r == '\r' || r == '\t')) {
			return derr(path, "control character %U in %s", r, quote(v))
		}
	}
	return nil
}

func checkTechnique(path, v string) error {
	if !techniqueRE.MatchString(v) {
		return derr(path, "%s is not an ATT&CK technique id (want T0831 or T1234.001)", quote(v))
	}
	return nil
}

func checkTactic(path, v string) error {
	if !tacticRE.MatchString(v) {
		return derr(path, "%s is not an ATT&CK tactic id (want TA0106)", quote(v))
	}
	return nil
}

func checkAddress(path, v string) error {
	if _, err := netip.ParseAddr(v); err == nil {
		return nil
	}
	if _, err := netip.ParseAddrPort(v); err == nil {
		return nil
	}
	return derr(path, "%s is not an IP address or IP:port (put host names in assets)", quote(v))
}

func checkShort(path, v string) error { return checkString(path, v, MaxShortLen, false) }

// checkTool checks the tool name: required, printable, at most MaxToolLen.
func checkTool(path, v string) error {
	if strings.TrimSpace(v) == "" {
		return derr(path, "required, the name of the tool")
	}
	return checkString(path, v, MaxToolLen, false)
}

// listItem is the validation of one element of a list field.
type listItem func(path, v string) error

func checkList(path string, vs []string, item listItem) error {
	if len(vs) > MaxListItems {
		return derr(path, "%d items, more than the limit of %d", len(vs), MaxListItems)
	}
	for i, v := range vs {
		p := fmt.Sprintf("%s[%d]", path, i)
		if err := checkShort(p, v); err != nil {
			return err
		}
		if v == "" {
			return derr(p, "empty")
		}
		if item != nil {
			if err := item(p, v); err != nil {
				return err
			}
		}
	}
	return nil
}
