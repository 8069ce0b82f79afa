// Command refdetect is pumplab's reference detector: a network detector that
// uses only the lab's public contract, like any vendor's tool. It reads the
// run's traffic capture as it grows ($PUMPLAB_PCAP, pcapng), reassembles the
// MQTT and the HL7 (MLLP) in it, learns the lab's inventory from
// $PUMPLAB_LAB_EVENTS, and posts alerts with ATT&CK for ICS technique ids
// to $PUMPLAB_ALERTS_URL (docs/tools.md lists its rules).
//
// It prints "refdetect ready" once it follows the capture, and on SIGTERM
// reads the capture to its end before it exits.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pumplab/pumplab/lab/capture"
)

func main() {
	log.SetFlags(0)
	log.SetPrefix("refdetect: ")
	pcap := flag.String("pcap", os.Getenv("PUMPLAB_PCAP"), "the capture to follow (pcapng, may still be growing)")
	events := flag.String("lab-events", os.Getenv("PUMPLAB_LAB_EVENTS"), "the lab's events file (JSON lines)")
	alerts := flag.String("alerts", os.Getenv("PUMPLAB_ALERTS_URL"), "the lab's alert API (POST); - prints alerts on stdout")
	tool := flag.String("tool", envOr("PUMPLAB_TOOL_NAME", "refdetect"), "tool name in the alerts")
	follow := flag.Bool("follow", true, "follow the growing capture until SIGTERM; false reads it once")
	trace := flag.Bool("trace", false, "print every decoded MQTT packet and HL7 message on stderr")
	crashAfter := flag.Int("crash-after-packets", 0, "for lab tests only: exit with status 3 after this many packets (a tool crashing mid-run)")
	flag.Parse()
	if *pcap == "" {
		log.Fatal("no capture to read: set PUMPLAB_PCAP or -pcap (the lab sets it when it captures; see the run's capture note)")
	}
	if *alerts == "" {
		log.Fatal("nowhere to report: set PUMPLAB_ALERTS_URL or -alerts")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	out := newPoster(*alerts)
	d := &detector{}
	d.eng = NewEngine(Config{Tool: *tool}, out.send)
	d.eng.approved = d.approved
	if *trace {
		d.eng.Trace = log.Printf
	}
	d.re = newReassembler(d.eng)
	d.crashAfter = *crashAfter
	if err := d.run(ctx, *pcap, *events, *follow); err != nil {
		out.close()
		log.Fatal(err)
	}
	n, errs := out.close()
	log.Printf("done: %d packets, %d alerts sent, %d not delivered, %d undecodable stream units", d.packets, n, errs, d.re.errs)
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

type detector struct {
	eng        *Engine
	re         *reassembler
	packets    int
	crashAfter int
	evOff      int64
	libMu      sync.Mutex
	libOK      map[string]bool
	libAt      time.Time
	libURL     string
	// events not applied yet: a lab event applies from its time on, so
	// packets captured before it are read with the state before it.
	queued []LabEvent
	// eventsPath is the lab events file; evChecked when it was last read:
	// a packet captured later may follow an event not read yet.
	eventsPath string
	evChecked  time.Time
}

// applyEvents applies the queued lab events up to t (all with zero t).
func (d *detector) applyEvents(t time.Time) {
	for len(d.queued) > 0 && (t.IsZero() || !d.queued[0].Time.After(t)) {
		d.eng.Lab(d.queued[0])
		d.queued = d.queued[1:]
	}
}

// run follows the capture and the lab events until ctx ends, then reads
// what is left and returns.
func (d *detector) run(ctx context.Context, pcapPath, eventsPath string, follow bool) error {
	var f *os.File
	for f == nil {
		var err error
		f, err = os.Open(pcapPath)
		if err != nil {
			if !follow || !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("capture: %w", err)
			}
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	defer f.Close()
	d.eventsPath = eventsPath
	rd := capture.NewReader(f)
	fmt.Println("refdetect ready")
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	draining := false
	for {
		d.readEvents(eventsPath)
		for {
			p, err := rd.Next()
			if err == io.EOF || errors.Is(err, capture.ErrShort) {
				d.applyEvents(time.Time{})
				break
			}
			if err != nil {
				return fmt.Errorf("capture %s: %w", pcapPath, err)
			}
			d.packet(p)
		}
		// Time-outs run on packet time (in packet): a lagging detector must
		// not take its own delay for a missing message.
		if draining || !follow {
			return nil
		}
		select {
		case <-ctx.Done():
			draining = true // one more pass: read the capture to its end
		case <-tick.C:
		}
	}
}

func (d *detector) packet(p capture.Packet) {
	d.packets++
	if d.crashAfter > 0 && d.packets >= d.crashAfter {
		fmt.Fprintf(os.Stderr, "refdetect: crashing on purpose after %d packets (-crash-after-packets)\n", d.packets)
		os.Exit(3)
	}
	if p.LinkType != capture.LinkTypeEthernet {
		return
	}
	s, err := capture.DecodeEthernet(p.Data)
	if err != nil {
		return
	}
	if p.Time.After(d.evChecked) {
		d.readEvents(d.eventsPath)
	}
	d.applyEvents(p.Time)
	d.eng.Tick(p.Time)
	d.re.segment(p.Time, s)
}

// readEvents reads new complete lines of the lab events file.
func (d *detector) readEvents(path string) {
	if path == "" {
		return
	}
	d.evChecked = time.Now()
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	if _, err := f.Seek(d.evOff, io.SeekStart); err != nil {
		return
	}
	br := bufio.NewReader(f)
	for {
		line, err := br.ReadBytes('\n')
		if err != nil {
			return // an incomplete line is read again next time
		}
		d.evOff += int64(len(line))
		var ev LabEvent
		if err := json.Unmarshal(line, &ev); err != nil {
			log.Printf("lab events: line at offset %d: %v", d.evOff-int64(len(line)), err)
			continue
		}
		d.queued = append(d.queued, ev)
	}
}

// approved asks the lab's drug-library service at url which hashes are
// approved (GET /v1/library/versions), cached per url and refreshed on an
// unknown hash (at most every 50 ms).
func (d *detector) approved(url, hash string) (bool, error) {
	d.libMu.Lock()
	defer d.libMu.Unlock()
	if d.libURL != url {
		d.libURL, d.libOK = url, nil
	}
	if d.libOK[hash] {
		return true, nil
	}
	if d.libOK != nil && time.Since(d.libAt) < 50*time.Millisecond {
		return false, nil
	}
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(strings.TrimRight(url, "/") + "/v1/library/versions")
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	var vs []struct {
		Hash     string          `json:"hash"`
		State    string          `json:"state"`
		Approval json.RawMessage `json:"approval"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 8<<20)).Decode(&vs); err != nil {
		return false, fmt.Errorf("drug library versions: %w", err)
	}
	d.libOK, d.libAt = map[string]bool{}, time.Now()
	for _, v := range vs {
		if len(v.Approval) > 0 && string(v.Approval) != "null" {
			d.libOK[v.Hash] = true
		}
	}
	return d.libOK[hash], nil
}

// poster sends alerts to the lab's HTTP alert API in order, from one
// goroutine, so that the detector never waits on the network.
type poster struct {
	url    string
	ch     chan Alert
	done   chan struct{}
	sent   int
	failed atomic.Int64
}

func newPoster(url string) *poster {
	p := &poster{url: url, ch: make(chan Alert, 4096), done: make(chan struct{})}
	go p.loop()
	return p
}

func (p *poster) send(a Alert) {
	select {
	case p.ch <- a:
	default:
		p.failed.Add(1)
		log.Printf("alert queue full, dropped: %s", a.Text)
	}
}

func (p *poster) loop() {
	defer close(p.done)
	c := &http.Client{Timeout: 5 * time.Second}
	for a := range p.ch {
		b, _ := json.Marshal(a)
		if p.url == "-" {
			fmt.Println(string(b))
			p.sent++
			continue
		}
		resp, err := c.Post(p.url, "application/json", bytes.NewReader(b))
		if err != nil {
			p.failed.Add(1)
			log.Printf("post alert: %v", err)
			continue
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			p.failed.Add(1)
			log.Printf("post alert: %s: %s", resp.Status, body)
			continue
		}
		p.sent++
	}
}

func (p *poster) close() (int, int64) {
	close(p.ch)
	<-p.done
	return p.sent, p.failed.Load()
}

// portOf extracts the port of host:port or scheme://host:port/path.
func portOf(a string) (uint16, bool) {
	if i := strings.Index(a, "://"); i >= 0 {
		a = a[i+3:]
	}
	if i := strings.IndexByte(a, '/'); i >= 0 {
		a = a[:i]
	}
	if ap, err := netip.ParseAddrPort(a); err == nil {
		return ap.Port(), true
	}
	_, port, err := net.SplitHostPort(a)
	if err != nil {
		return 0, false
	}
	n, err := strconv.ParseUint(port, 10, 16)
	return uint16(n), err == nil && n > 0
}
