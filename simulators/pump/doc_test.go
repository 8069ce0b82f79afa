package pump

import (
	"os"
	"strings"
	"testing"
)

// TestDocServicePortTranscript replays the service-port session shown in
// docs/pump.md against a real service port: every "> " line is sent and the
// lines after it must be the reply, byte for byte (PORT stands for the
// ephemeral port).
func TestDocServicePortTranscript(t *testing.T) {
	b, err := os.ReadFile("../../docs/pump.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	const marker = "<!-- service-port-transcript -->\n```text\n"
	i := strings.Index(doc, marker)
	if i < 0 {
		t.Fatal("docs/pump.md has no service-port transcript")
	}
	block := doc[i+len(marker):]
	block = block[:strings.Index(block, "```")]
	lines := strings.Split(strings.TrimRight(block, "\n"), "\n")

	s := newSecRig(t, Config{Access: nccoeAccess(), Credentials: Credentials{BrokerUsername: "PUMP-0001", BrokerPassword: "s3cret-broker",
		WiFiSSID: "MED-DEV", WiFiPSK: "Infusion2019!"}}, AgentConfig{BrokerURL: "tcp://127.0.0.1:1883"})
	s.running(50)
	sp, err := NewServicePort(s.p, "")
	s.must(err)
	defer sp.Close()
	pc := dialPort(t, sp)
	if !strings.HasPrefix(lines[0], "$ telnet 127.0.0.1 PORT") {
		t.Fatalf("transcript starts with %q", lines[0])
	}
	var got []string
	got = append(got, lines[0], pc.line())
	for _, l := range lines[1:] {
		if cmd, ok := strings.CutPrefix(l, "> "); ok {
			got = append(got, l)
			got = append(got, pc.do(cmd)...)
		}
	}
	if want := strings.Join(lines, "\n"); strings.Join(got, "\n") != want {
		t.Fatalf("transcript differs; the session gives:\n%s", strings.Join(got, "\n"))
	}
}
