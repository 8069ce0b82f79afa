package druglib

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/pumplab/pumplab/clock"
)

func libVersion(v string) *Library {
	l := Default()
	l.Version = v
	return l
}

func newTestStore(t *testing.T, signed bool) (*Store, *clock.Fake) {
	t.Helper()
	clk := clock.NewFake(time.Time{})
	cfg := StoreConfig{Clock: clk}
	if signed {
		_, cfg.SigningKey = testKey(1)
		cfg.KeyID = "pharmacy-test"
	}
	return NewStore(cfg), clk
}

func TestWorkflowRecordsEveryStep(t *testing.T) {
	s, clk := newTestStore(t, true)
	start := clk.Now()
	if _, ok := s.Published(); ok {
		t.Fatal("empty store has a published library")
	}
	lib := libVersion("ADULT-2026.02")
	lib.CreatedBy = "ignored"
	lib.ApprovedBy = "forged"
	info, err := s.Draft(lib, "rph.alvarez")
	if err != nil {
		t.Fatal(err)
	}
	if info.State != StateDraft || info.Seq != 1 || info.Author != "rph.alvarez" || info.Current {
		t.Fatalf("draft info %+v", info)
	}
	clk.Advance(time.Minute)
	lib.Entries[0].Dose.HardMax = 0.8 // an edit by a second pharmacist
	if info, err = s.Draft(lib, "rph.okafor"); err != nil {
		t.Fatal(err)
	}
	if info.Seq != 1 || info.Author != "rph.alvarez" || len(info.Editors) != 2 {
		t.Fatalf("edit info %+v", info)
	}
	clk.Advance(time.Minute)
	if _, err := s.Finalize("ADULT-2026.02", "rph.alvarez"); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Hour)
	if info, err = s.Approve("ADULT-2026.02", "rph.chen"); err != nil {
		t.Fatal(err)
	}
	if info.State != StateApproved || !info.Signed || info.Approval.Approver != "rph.chen" || info.Approval.Seq != 1 {
		t.Fatalf("approve info %+v", info)
	}
	clk.Advance(time.Minute)
	b, err := s.Publish("ADULT-2026.02", "rph.chen")
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := testKey(1)
	if err := b.Verify(pub); err != nil {
		t.Fatalf("published bundle: %v", err)
	}
	if b.Library.Entries[0].Dose.HardMax != 0.8 || b.Library.CreatedBy != "rph.alvarez" || b.Library.ApprovedBy != "rph.chen" || b.KeyID != "pharmacy-test" {
		t.Fatalf("published library %+v", b.Library)
	}
	cur, ok := s.Published()
	if !ok || cur.Hash != b.Hash {
		t.Fatalf("Published = %v %v", cur, ok)
	}

	type step struct {
		action, by string
		at         time.Duration
	}
	want := []step{
		{ActionDraft, "rph.alvarez", 0},
		{ActionEdit, "rph.okafor", time.Minute},
		{ActionFinalize, "rph.alvarez", 2 * time.Minute},
		{ActionApprove, "rph.chen", 62 * time.Minute},
		{ActionPublish, "rph.chen", 63 * time.Minute},
	}
	h := s.History()
	if len(h) != len(want) {
		t.Fatalf("history %+v", h)
	}
	for i, w := range want {
		if h[i].Action != w.action || h[i].By != w.by || !h[i].At.Equal(start.Add(w.at)) || h[i].Version != "ADULT-2026.02" {
			t.Errorf("history[%d] = %+v, want %+v", i, h[i], w)
		}
	}
	if h[0].Hash == h[1].Hash || h[4].Hash != b.Hash {
		t.Fatal("history hashes do not follow the edits")
	}
	if !b.Approval.ApprovedAt.Equal(start.Add(62*time.Minute)) || !b.Approval.FinalizedAt.Equal(start.Add(2*time.Minute)) {
		t.Fatalf("approval times %+v", b.Approval)
	}
	// The bundle is a copy.
	b.Library.Entries[0].Dose.HardMax = 50
	if again, _ := s.Published(); again.Library.Entries[0].Dose.HardMax != 0.8 {
		t.Fatal("changing a returned bundle changed the store")
	}
}

func TestSelfApprovalRefused(t *testing.T) {
	s, _ := newTestStore(t, false)
	if _, err := s.Draft(libVersion("V1"), "rph.a"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Draft(libVersion("V1"), "rph.b"); err != nil { // edit
		t.Fatal(err)
	}
	if _, err := s.Finalize("V1", "rph.c"); err != nil {
		t.Fatal(err)
	}
	for _, who := range []string{"rph.a", " RPH.A ", "rph.b", "rph.c"} {
		if _, err := s.Approve("V1", who); !errors.Is(err, ErrSelfApproval) {
			t.Errorf("approve by %q: %v, want ErrSelfApproval", who, err)
		}
	}
	if _, err := s.Approve("V1", ""); !errors.Is(err, ErrNoUser) {
		t.Errorf("approve by nobody: %v", err)
	}
	if _, err := s.Approve("V1", "rph.d"); err != nil {
		t.Fatalf("approve by a second pharmacist: %v", err)
	}
}

func TestWorkflowOrder(t *testing.T) {
	s, _ := newTestStore(t, false)
	if _, err := s.Draft(libVersion("V1"), "rph.a"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Approve("V1", "rph.b"); !errors.Is(err, ErrState) {
		t.Errorf("approve a draft: %v", err)
	}
	if _, err := s.Publish("V1", "rph.b"); !errors.Is(err, ErrState) {
		t.Errorf("publish a draft: %v", err)
	}
	if _, err := s.Finalize("V1", "rph.a"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Finalize("V1", "rph.a"); !errors.Is(err, ErrState) {
		t.Errorf("finalize twice: %v", err)
	}
	if _, err := s.Publish("V1", "rph.b"); !errors.Is(err, ErrState) {
		t.Errorf("publish unapproved: %v", err)
	}
	if _, err := s.ForcePublish("V1", "rph.b", "urgent"); !errors.Is(err, ErrState) {
		t.Errorf("force-publish unapproved: %v", err)
	}
	if _, err := s.Draft(libVersion("V1"), "rph.a"); !errors.Is(err, ErrExists) {
		t.Errorf("edit a finalized version: %v", err)
	}
	if _, err := s.Draft(libVersion("v1"), "rph.a"); !errors.Is(err, ErrExists) {
		t.Errorf("draft differing only in case: %v", err)
	}
	if _, err := s.Approve("V1", "rph.b"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Approve("V1", "rph.c"); !errors.Is(err, ErrState) {
		t.Errorf("approve twice: %v", err)
	}
	for _, op := range []func() error{
		func() error { _, err := s.Finalize("NOPE", "x"); return err },
		func() error { _, err := s.Approve("NOPE", "x"); return err },
		func() error { _, err := s.Publish("NOPE", "x"); return err },
		func() error { _, err := s.Bundle("NOPE"); return err },
		func() error { _, err := s.Info("NOPE"); return err },
	} {
		if err := op(); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown version: %v", err)
		}
	}
	if _, err := s.Draft(libVersion("V2"), ""); !errors.Is(err, ErrNoUser) {
		t.Errorf("draft without author: %v", err)
	}
	bad := libVersion("V3")
	bad.Entries[0].Dose.HardMax = 0.001
	var ve *ValidationError
	if _, err := s.Draft(bad, "rph.a"); !errors.As(err, &ve) {
		t.Errorf("invalid draft: %v", err)
	}
	if len(s.Versions()) != 1 {
		t.Fatalf("refused drafts were stored: %+v", s.Versions())
	}
	if _, err := s.Publish("V1", ""); !errors.Is(err, ErrNoUser) {
		t.Errorf("publish without user: %v", err)
	}
}

func TestRollbackRefused(t *testing.T) {
	s, _ := newTestStore(t, true)
	for _, v := range []string{"V1", "V2"} {
		if _, err := s.Draft(libVersion(v), "rph.a"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Finalize(v, "rph.a"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Approve(v, "rph.b"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Publish("V2", "rph.b"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Publish("V1", "rph.b"); !errors.Is(err, ErrRollback) {
		t.Fatalf("publish older V1 over V2: %v", err)
	}
	if cur, _ := s.Published(); cur.Version() != "V2" || cur.Seq() != 2 {
		t.Fatalf("current %s seq %d after refused rollback", cur.Version(), cur.Seq())
	}
	n := len(s.History())
	if _, err := s.Publish("V2", "rph.b"); err != nil {
		t.Fatalf("republish current: %v", err)
	}
	if len(s.History()) != n {
		t.Fatal("republishing the current version recorded a step")
	}
	b, err := s.ForcePublish("V1", "rph.b", "V2 broke the heparin entry")
	if err != nil {
		t.Fatal(err)
	}
	if b.Version() != "V1" || b.Seq() != 1 {
		t.Fatalf("forced bundle %s seq %d", b.Version(), b.Seq())
	}
	last := s.History()[len(s.History())-1]
	if last.Action != ActionForcePublish || last.Note != "V2 broke the heparin entry" || last.Version != "V1" {
		t.Fatalf("forced publish recorded as %+v", last)
	}
	infos := s.Versions()
	if len(infos) != 2 || infos[0].Version != "V1" || !infos[0].Current || infos[1].Current || infos[1].State != StatePublished {
		t.Fatalf("versions %+v", infos)
	}
}

func TestUnsignedStorePublishesUnsignedBundles(t *testing.T) {
	s, _ := newTestStore(t, false)
	b, err := s.Release(libVersion("V1"), "rph.a", "rph.b")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Verify(nil); !errors.Is(err, ErrUnsigned) {
		t.Fatalf("legacy bundle: %v, want ErrUnsigned", err)
	}
	if b.Approval == nil || b.Approval.Approver != "rph.b" {
		t.Fatalf("legacy bundle still carries the approval record, got %+v", b.Approval)
	}
}

func TestStoreConcurrentDrafts(t *testing.T) {
	s, _ := newTestStore(t, false)
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v := fmt.Sprintf("V%02d", i)
			if _, err := s.Release(libVersion(v), "rph.a", "rph.b"); err != nil && !errors.Is(err, ErrRollback) {
				t.Error(err)
			}
			s.Versions()
			s.Published()
		}()
	}
	wg.Wait()
	seen := map[uint64]bool{}
	for _, vi := range s.Versions() {
		if seen[vi.Seq] || vi.Seq < 1 || vi.Seq > 16 {
			t.Fatalf("seq %d repeated or out of range", vi.Seq)
		}
		seen[vi.Seq] = true
	}
	if cur, _ := s.Published(); cur == nil || cur.Seq() != 16 {
		t.Fatalf("the newest approved version is not current: %v", cur.Seq())
	}
}
