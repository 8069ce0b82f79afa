package druglib

import (
	"cmp"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/pumplab/pumplab/clock"
)

// Workflow errors of the Store; test with errors.Is.
var (
	ErrNotFound     = errors.New("not found")
	ErrNoUser       = errors.New("no user named")
	ErrState        = errors.New("not allowed in this workflow state")
	ErrExists       = errors.New("version exists and is no longer a draft")
	ErrSelfApproval = errors.New("approver must differ from the author and the finalizer")
	ErrRollback     = errors.New("version is older than the published one")
)

// State is the workflow state of a library version.
type State string

// Workflow states, in order (CTL-07).
const (
	StateDraft     State = "draft"     // being edited; Draft may replace it
	StateFinalized State = "finalized" // content frozen, waiting for a second pharmacist
	StateApproved  State = "approved"  // approved (and signed when the store has a key)
	StatePublished State = "published" // has been published; Current says whether it still is
)

// Event actions recorded in the history.
const (
	ActionDraft        = "draft"
	ActionEdit         = "edit"
	ActionFinalize     = "finalize"
	ActionApprove      = "approve"
	ActionPublish      = "publish"
	ActionForcePublish = "force-publish"
)

// Event is one recorded workflow step.
type Event struct {
	Version string    `json:"version"`
	Seq     uint64    `json:"seq"`
	Action  string    `json:"action"`
	By      string    `json:"by"`
	At      time.Time `json:"at"`
	Hash    string    `json:"hash"`
	Note    string    `json:"note,omitempty"`
}

// VersionInfo describes one library version in the store.
type VersionInfo struct {
	Version  string    `json:"version"`
	Seq      uint64    `json:"seq"`
	State    State     `json:"state"`
	Current  bool      `json:"current"` // the published version pumps should run
	Hash     string    `json:"hash"`
	Author   string    `json:"author"`
	Editors  []string  `json:"editors"` // author first, then whoever re-drafted it
	Approval *Approval `json:"approval,omitempty"`
	Signed   bool      `json:"signed"`
	Events   []Event   `json:"events"`
}

// StoreConfig configures a Store. The zero value works: real clock, no
// signing key (bundles are published unsigned, as in legacy postures),
// no logging.
type StoreConfig struct {
	// Clock stamps workflow events. Nil means clock.Real().
	Clock clock.Clock
	// SigningKey signs approved bundles. Nil publishes unsigned bundles.
	SigningKey ed25519.PrivateKey
	// KeyID names SigningKey in bundles.
	KeyID string
	// Logger receives one Info record per workflow step. Nil discards.
	Logger *slog.Logger
}

type version struct {
	lib       *Library // CreatedBy = author, ApprovedBy empty
	hash      string
	seq       uint64
	state     State
	editors   []string
	finalizer string
	finalAt   time.Time
	approval  *Approval
	sig       []byte
	keyID     string
}

// Store holds library versions and runs the approval workflow (CTL-07):
// Draft (pharmacist edits) -> Finalize -> Approve (a second pharmacist) ->
// Publish. Every step is recorded with who and when. Versions get a
// release sequence number Seq at their first draft; Publish refuses a
// version older than the published one unless forced. Safe for concurrent
// use.
type Store struct {
	clock clock.Clock
	key   ed25519.PrivateKey
	keyID string
	log   *slog.Logger

	mu       sync.Mutex
	versions map[string]*version
	seq      uint64
	current  *version
	history  []Event
}

// NewStore returns an empty store.
func NewStore(cfg StoreConfig) *Store {
	s := &Store{clock: cfg.Clock, key: cfg.SigningKey, keyID: cfg.KeyID, log: cfg.Logger, versions: map[string]*version{}}
	if s.clock == nil {
		s.clock = clock.Real()
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s
}

func user(op, name string) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		return "", fmt.Errorf("druglib: %s: %w", op, ErrNoUser)
	}
	return name, nil
}

// record appends an event; s.mu is held.
func (s *Store) record(v *version, action, by, note string) {
	e := Event{Version: v.lib.Version, Seq: v.seq, Action: action, By: by, At: s.clock.Now().Round(0).UTC(), Hash: v.hash, Note: note}
	s.history = append(s.history, e)
	s.log.Info("druglib: "+action, "version", e.Version, "seq", e.Seq, "by", by, "hash", e.Hash, "note", note)
}

func (s *Store) lookup(op, name string) (*version, error) {
	v, ok := s.versions[name]
	if !ok {
		return nil, fmt.Errorf("druglib: %s %s: library version %w", op, name, ErrNotFound)
	}
	return v, nil
}

// Draft stores lib as a draft written by author, or replaces the content of
// a version that is still a draft (an edit). created_by is set to the first
// author; approved_by is cleared. The library must be valid. A version
// that is finalized or later cannot be changed (ErrExists): edit a new
// version instead.
func (s *Store) Draft(lib *Library, author string) (*VersionInfo, error) {
	author, err := user("draft", author)
	if err != nil {
		return nil, err
	}
	if lib == nil {
		return nil, errors.New("druglib: draft: no library")
	}
	c := lib.Clone()
	c.ApprovedBy = ""
	s.mu.Lock()
	defer s.mu.Unlock()
	v, exists := s.versions[c.Version]
	if exists {
		if v.state != StateDraft {
			return nil, fmt.Errorf("druglib: draft %s: %w (state %s)", c.Version, ErrExists, v.state)
		}
		c.CreatedBy = v.lib.CreatedBy
	} else {
		c.CreatedBy = author
		for name := range s.versions {
			if strings.EqualFold(name, c.Version) {
				return nil, fmt.Errorf("druglib: draft %s: %w: differs only in case from %s", c.Version, ErrExists, name)
			}
		}
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("druglib: draft %s: %w", c.Version, err)
	}
	action := ActionEdit
	if !exists {
		s.seq++
		v = &version{seq: s.seq, state: StateDraft}
		s.versions[c.Version] = v
		action = ActionDraft
	}
	v.lib, v.hash = c, c.Hash()
	if !slices.ContainsFunc(v.editors, func(e string) bool { return samePerson(e, author) }) {
		v.editors = append(v.editors, author)
	}
	s.record(v, action, author, "")
	return s.info(v), nil
}

// Finalize freezes a draft for review.
func (s *Store) Finalize(versionName, by string) (*VersionInfo, error) {
	by, err := user("finalize "+versionName, by)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v, err := s.lookup("finalize", versionName)
	if err != nil {
		return nil, err
	}
	if v.state != StateDraft {
		return nil, fmt.Errorf("druglib: finalize %s: %w: it is %s, not a draft", versionName, ErrState, v.state)
	}
	v.state, v.finalizer, v.finalAt = StateFinalized, by, s.clock.Now().Round(0).UTC()
	s.record(v, ActionFinalize, by, "")
	return s.info(v), nil
}

// Approve records the second pharmacist's approval of a finalized version
// and signs it when the store has a key. The approver must not have edited
// or finalized the version (ErrSelfApproval).
func (s *Store) Approve(versionName, approver string) (*VersionInfo, error) {
	approver, err := user("approve "+versionName, approver)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v, err := s.lookup("approve", versionName)
	if err != nil {
		return nil, err
	}
	switch v.state {
	case StateDraft:
		return nil, fmt.Errorf("druglib: approve %s: %w: finalize the draft first", versionName, ErrState)
	case StateFinalized:
	default:
		return nil, fmt.Errorf("druglib: approve %s: %w: already %s", versionName, ErrState, v.state)
	}
	if samePerson(approver, v.finalizer) || slices.ContainsFunc(v.editors, func(e string) bool { return samePerson(e, approver) }) {
		return nil, fmt.Errorf("druglib: approve %s: %w: %s edited or finalized it", versionName, ErrSelfApproval, approver)
	}
	a := &Approval{
		Version: v.lib.Version, Seq: v.seq, Hash: v.hash,
		Author: v.lib.CreatedBy, FinalizedBy: v.finalizer, FinalizedAt: v.finalAt,
		Approver: approver, ApprovedAt: s.clock.Now().Round(0).UTC(),
	}
	if s.key != nil {
		b, err := Sign(v.lib, a, s.key, s.keyID)
		if err != nil {
			return nil, fmt.Errorf("druglib: approve %s: %w", versionName, err)
		}
		v.sig, v.keyID = b.Signature, b.KeyID
	}
	v.approval, v.state = a, StateApproved
	s.record(v, ActionApprove, approver, "")
	return s.info(v), nil
}

// Publish makes an approved version the current one. Publishing the current
// version again changes nothing. A version with a lower Seq than the current
// one is refused with ErrRollback; use ForcePublish for a deliberate
// rollback.
func (s *Store) Publish(versionName, by string) (*Bundle, error) {
	return s.publish(versionName, by, false, "")
}

// ForcePublish publishes like Publish but also an older version (a
// rollback), recording reason. Note that pumps enforcing anti-rollback will
// still refuse it; the usual fix is to re-release the old content as a new
// version.
func (s *Store) ForcePublish(versionName, by, reason string) (*Bundle, error) {
	return s.publish(versionName, by, true, reason)
}

func (s *Store) publish(versionName, by string, force bool, reason string) (*Bundle, error) {
	by, err := user("publish "+versionName, by)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v, err := s.lookup("publish", versionName)
	if err != nil {
		return nil, err
	}
	if v.state != StateApproved && v.state != StatePublished {
		return nil, fmt.Errorf("druglib: publish %s: %w: it is %s, not approved", versionName, ErrState, v.state)
	}
	if s.current == v {
		return s.bundle(v), nil
	}
	if cur := s.current; cur != nil && v.seq < cur.seq && !force {
		return nil, fmt.Errorf("druglib: publish %s: %w: seq %d is below %s's seq %d", versionName, ErrRollback, v.seq, cur.lib.Version, cur.seq)
	}
	action := ActionPublish
	if force {
		action = ActionForcePublish
	}
	v.state, s.current = StatePublished, v
	s.record(v, action, by, reason)
	return s.bundle(v), nil
}

// Release runs the whole workflow for lib in one call: draft by author,
// finalize by author, approve by approver, publish by approver. Lab setup
// uses it to install a library.
func (s *Store) Release(lib *Library, author, approver string) (*Bundle, error) {
	if _, err := s.Draft(lib, author); err != nil {
		return nil, err
	}
	if _, err := s.Finalize(lib.Version, author); err != nil {
		return nil, err
	}
	if _, err := s.Approve(lib.Version, approver); err != nil {
		return nil, err
	}
	return s.Publish(lib.Version, approver)
}

// Published returns the current published bundle.
func (s *Store) Published() (*Bundle, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.current == nil {
		return nil, false
	}
	return s.bundle(s.current), true
}

// Bundle returns the bundle of any version; drafts and finalized versions
// have no approval record and no signature.
func (s *Store) Bundle(versionName string) (*Bundle, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, err := s.lookup("get", versionName)
	if err != nil {
		return nil, err
	}
	return s.bundle(v), nil
}

// Info describes one version.
func (s *Store) Info(versionName string) (*VersionInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, err := s.lookup("info", versionName)
	if err != nil {
		return nil, err
	}
	return s.info(v), nil
}

// Versions describes every version, oldest (lowest Seq) first.
func (s *Store) Versions() []*VersionInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*VersionInfo, 0, len(s.versions))
	for _, v := range s.versions {
		out = append(out, s.info(v))
	}
	slices.SortFunc(out, func(a, b *VersionInfo) int { return cmp.Compare(a.Seq, b.Seq) })
	return out
}

// History returns every recorded workflow step, in order.
func (s *Store) History() []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.history)
}

// bundle builds a bundle copy; s.mu is held.
func (s *Store) bundle(v *version) *Bundle {
	b := &Bundle{Library: v.lib.Clone(), Hash: v.hash, KeyID: v.keyID}
	if v.approval != nil {
		a := *v.approval
		b.Approval = &a
		b.Library.ApprovedBy = a.Approver
	}
	if v.sig != nil {
		b.Signature = slices.Clone(v.sig)
	}
	return b
}

// info builds a VersionInfo; s.mu is held.
func (s *Store) info(v *version) *VersionInfo {
	vi := &VersionInfo{
		Version: v.lib.Version, Seq: v.seq, State: v.state, Current: s.current == v,
		Hash: v.hash, Author: v.lib.CreatedBy, Editors: slices.Clone(v.editors), Signed: v.sig != nil,
		Events: []Event{},
	}
	if v.approval != nil {
		a := *v.approval
		vi.Approval = &a
	}
	for _, e := range s.history {
		if e.Version == vi.Version {
			vi.Events = append(vi.Events, e)
		}
	}
	return vi
}
