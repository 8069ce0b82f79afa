package intake

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// docBlocks returns the fenced blocks of a language in docs/alerts.md.
func docBlocks(t *testing.T, lang string) []string {
	t.Helper()
	b, err := os.ReadFile("../../docs/alerts.md")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile("(?s)```" + lang + "\n(.*?)```")
	var out []string
	for _, m := range re.FindAllStringSubmatch(string(b), -1) {
		out = append(out, strings.TrimSpace(m[1]))
	}
	return out
}

// TestDocsShellExamples runs every sh block of docs/alerts.md against an
// intake, with PORT set to the transport the command uses.
func TestDocsShellExamples(t *testing.T) {
	for _, tool := range []string{"bash", "curl", "logger"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("no %s in PATH", tool)
		}
	}
	dir := t.TempDir()
	in := start(t, Config{Files: []File{{Path: filepath.Join(dir, "alerts.jsonl")}}, PollInterval: 5 * time.Millisecond})
	port := func(addr string) string { _, p, _ := net.SplitHostPort(addr); return p }
	blocks := docBlocks(t, "sh")
	if len(blocks) != 5 {
		t.Fatalf("%d sh blocks in docs/alerts.md, this test knows 5", len(blocks))
	}
	want := 0
	for _, cmd := range blocks {
		var p string
		n := 1
		switch {
		case strings.Contains(cmd, "curl"):
			p = port(strings.TrimPrefix(in.HTTPURL(), "http://"))
			n = strings.Count(cmd, `"tool"`)
		case strings.Contains(cmd, "logger"), strings.Contains(cmd, "/dev/udp"):
			p = port(in.SyslogUDPAddr())
		case strings.Contains(cmd, "alerts.jsonl"):
		default:
			t.Fatalf("unknown example %q", cmd)
		}
		c := exec.Command("bash", "-c", cmd)
		c.Dir = dir
		c.Env = append(os.Environ(), "PORT="+p)
		out, err := c.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", cmd, err, out)
		}
		if strings.Contains(cmd, "curl") && strings.TrimSpace(string(out)) != `{"accepted":`+string(rune('0'+n))+`}` {
			t.Fatalf("%s answered %s", cmd, out)
		}
		want += n
		as := waitN(t, in, want)
		for _, a := range as[want-n:] {
			if a.Tool != "pumpguard" || len(a.Assets) == 0 || !strings.HasPrefix(a.Assets[0], "PUMP-000") {
				t.Fatalf("%s gave %+v", cmd, a)
			}
		}
	}
	if st := in.Stats(); st.HTTP.Refused+st.SyslogUDP.Refused+st.File.Refused != 0 {
		t.Fatalf("refusals: %+v", st)
	}
}

// TestDocsEveExample checks the eve.json example and its stated mapping.
func TestDocsEveExample(t *testing.T) {
	var line string
	for _, b := range docBlocks(t, "json") {
		if strings.Contains(b, `"event_type":"alert"`) {
			line = b
		}
	}
	as, err := DecodeFileLine([]byte(line), "")
	if err != nil {
		t.Fatalf("%v: %s", err, line)
	}
	a := as[0]
	if a.Tool != "suricata" || a.Severity != "high" || a.Techniques[0] != "T0831" || a.Tactics[0] != "TA0106" ||
		a.Addresses[1] != "10.20.0.5" || a.Text != "PUMPLAB MQTT rogue rate change T0831 [sid 9000001]" {
		t.Fatalf("%+v", a)
	}
}

// TestDocsErrorExample checks the 400 body shown in docs/alerts.md.
func TestDocsErrorExample(t *testing.T) {
	_, err := DecodeAlerts([]byte(`[{"tool":"a"},{"tool":"a"},{"tool":"a"},{"tool":"a","techniques":["T83"]}]`))
	if err == nil {
		t.Fatal("accepted")
	}
	found := false
	for _, b := range docBlocks(t, "json") {
		if strings.Contains(b, `{"error":`) && strings.Contains(b, strings.ReplaceAll(err.Error(), `"`, `\"`)) {
			found = true
		}
	}
	if !found {
		t.Fatalf("docs do not show the error %q", err)
	}
}
