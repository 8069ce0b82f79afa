package report

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pumplab/pumplab/harness/score"
)

// FuzzHTML puts untrusted text (tool names, alert text, titles, entries,
// notes: tools and scenarios choose them) everywhere the page shows text:
// the page must stay self-contained, with no markup of the input's own.
func FuzzHTML(f *testing.F) {
	for _, s := range []string{"", "ids-a", `<script>alert(1)</script>`, `"><img src=//x.example/a>`,
		"line\nbreak|pipe", `</style><link rel=stylesheet href=https://x.example/a.css>`, "\x00\xff", "&amp;"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		in, _, _ := fixture()
		in.Scenarios[0].Title = s
		in.Scenarios[0].Reason = s
		in.Scenarios[0].Entries = append(in.Scenarios[0].Entries, Entry{Name: s, Value: s})
		in.Notes = []string{s}
		in.Run.ID, in.Run.Provider, in.Run.Posture.Name = s, s, s
		in.Run.Tools = append(in.Run.Tools, Tool{Name: s + "x", Version: s})
		in.FalsePositives[s+"x"] = []score.Alert{{Tool: s + "x", Time: at(time.Hour), Text: s, Assets: []string{s}}}
		page := string(HTML(Build(in)))
		if err := checkTags(page); err != nil {
			t.Fatalf("input %q: %v", s, err)
		}
		for _, id := range SectionIDs {
			if strings.Count(page, `id="`+id+`"`) != 1 {
				t.Fatalf("input %q: id %q not exactly once", s, id)
			}
		}
	})
}

func TestHTMLOfEmptyScorecard(t *testing.T) {
	page := string(HTML(Build(Input{})))
	for _, id := range SectionIDs {
		if !strings.Contains(page, `id="`+id+`"`) {
			t.Errorf("empty report lacks id=%q", id)
		}
	}
	for _, want := range []string{"No attack scenario in this run.", "No tool detected any step.", "No control scenario in this run."} {
		if !strings.Contains(page, want) {
			t.Errorf("empty report lacks %q", want)
		}
	}
	if md := string(SummaryMarkdown(Build(Input{}))); !strings.Contains(md, "Harm index 0") {
		t.Errorf("empty summary:\n%s", md)
	}
}

var (
	tagRE      = regexp.MustCompile(`<[^>]*>`)
	tagNameRE  = regexp.MustCompile(`^</?([a-zA-Z!][a-zA-Z0-9]*)`)
	resourceRE = regexp.MustCompile(`(?i)\b(src|href|srcset|action|poster|data|style)\s*=`)
	allowedTag = map[string]bool{"!DOCTYPE": true, "html": true, "head": true, "meta": true, "title": true, "style": true,
		"body": true, "header": true, "h1": true, "h2": true, "div": true, "dl": true, "dt": true, "dd": true, "section": true,
		"p": true, "span": true, "table": true, "thead": true, "tbody": true, "tr": true, "th": true, "td": true, "code": true,
		"svg": true, "rect": true, "line": true, "text": true, "circle": true, "ul": true, "li": true, "br": true,
		"strong": true, "footer": true}
)

// checkTags checks every tag of the page: a known element, no attribute
// that loads a resource (src, href, ...) or styles inline.
func checkTags(page string) error {
	for _, tag := range tagRE.FindAllString(page, -1) {
		m := tagNameRE.FindStringSubmatch(tag)
		if m == nil || !allowedTag[m[1]] {
			return fmt.Errorf("unexpected tag %q", tag)
		}
		if resourceRE.MatchString(tag) {
			return fmt.Errorf("tag with a resource attribute %q", tag)
		}
	}
	return nil
}

func TestCheckTagsCanFail(t *testing.T) {
	for _, bad := range []string{`<img src="x">`, `<link href="a.css">`, `<td src=x>`, `<script>`} {
		if checkTags("<p>ok</p>"+bad) == nil {
			t.Errorf("checkTags accepts %q", bad)
		}
	}
	in, _, _ := fixture()
	if err := checkTags(string(HTML(Build(in)))); err != nil {
		t.Error(err)
	}
}
