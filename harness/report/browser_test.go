package report

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// chromiumBinary finds a Chromium-like browser in PATH. Without one the
// browser test skips, unless PUMPLAB_REQUIRE_CHROMIUM is set: then it fails.
func chromiumBinary(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("PUMPLAB_REQUIRE_CHROMIUM") != "" {
		t.Fatal("PUMPLAB_REQUIRE_CHROMIUM is set but no chromium, chromium-browser or google-chrome is in PATH (Debian: apt-get install chromium)")
	}
	t.Skip("no chromium, chromium-browser or google-chrome in PATH (Debian: apt-get install chromium; set PUMPLAB_REQUIRE_CHROMIUM=1 to make this a failure)")
	return ""
}

func runChromium(t *testing.T, bin string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
		"--disable-extensions", "--user-data-dir=" + t.TempDir()}
	cmd := exec.CommandContext(ctx, bin, append(base, args...)...)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %v: %v\nstderr:\n%s", bin, args, err, tail(stderr.String(), 2000))
	}
	return stdout.Bytes()
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// TestReportInBrowser renders report.html in headless Chromium: the
// screenshot must show many colours (charts and the outcome cells), and
// the rendered DOM must hold every section id.
func TestReportInBrowser(t *testing.T) {
	bin := chromiumBinary(t)
	in, steps, alerts := fixture()
	dir := t.TempDir()
	if err := Write(dir, Build(in), steps, alerts); err != nil {
		t.Fatal(err)
	}
	page, err := filepath.Abs(filepath.Join(dir, FileHTML))
	if err != nil {
		t.Fatal(err)
	}
	url := "file://" + filepath.ToSlash(page)

	shot := filepath.Join(dir, "report.png")
	runChromium(t, bin, "--hide-scrollbars", "--screenshot="+shot, "--window-size=1400,2400", url)
	f, err := os.Open(shot)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	colours, nonWhite := colourStats(img)
	b := img.Bounds()
	t.Logf("screenshot %dx%d, %d distinct colours, %.1f%% non-white", b.Dx(), b.Dy(), len(colours), 100*nonWhite)
	if len(colours) < 50 || nonWhite < 0.03 {
		t.Errorf("screenshot looks blank: %d distinct colours, %.1f%% non-white", len(colours), 100*nonWhite)
	}
	// The legend and the cells are painted in the outcome colours.
	for o, hex := range OutcomeColors {
		if !hasColour(colours, hex) {
			t.Errorf("screenshot has no pixel of %s (%s)", o, hex)
		}
	}
	if dst := os.Getenv("PUMPLAB_SCREENSHOT"); dst != "" {
		if b, err := os.ReadFile(shot); err == nil {
			_ = os.WriteFile(dst, b, 0o644)
		}
	}

	dom := string(runChromium(t, bin, "--dump-dom", url))
	for _, id := range SectionIDs {
		if !strings.Contains(dom, `id="`+id+`"`) {
			t.Errorf("rendered DOM lacks id=%q", id)
		}
	}
	if !strings.Contains(dom, "<svg") || !strings.Contains(dom, "ATK-25/1") {
		t.Error("rendered DOM lacks the charts or the steps")
	}
}

func colourStats(img image.Image) (map[[3]uint8]int, float64) {
	b := img.Bounds()
	colours := map[[3]uint8]int{}
	nonWhite := 0
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			c := [3]uint8{uint8(r >> 8), uint8(g >> 8), uint8(bl >> 8)}
			colours[c]++
			if c != [3]uint8{255, 255, 255} {
				nonWhite++
			}
		}
	}
	return colours, float64(nonWhite) / float64(b.Dx()*b.Dy())
}

// hasColour reports at least 20 pixels within 3 of the #rrggbb colour on
// every channel (colour management may shift a value by one or two).
func hasColour(colours map[[3]uint8]int, hex string) bool {
	var want [3]int
	for i := 0; i < 3; i++ {
		var v int
		for _, ch := range hex[1+2*i : 3+2*i] {
			v = v*16 + strings.IndexRune("0123456789abcdef", ch)
		}
		want[i] = v
	}
	n := 0
	for c, k := range colours {
		ok := true
		for i := 0; i < 3; i++ {
			if d := int(c[i]) - want[i]; d < -3 || d > 3 {
				ok = false
			}
		}
		if ok {
			n += k
		}
	}
	return n >= 20
}
