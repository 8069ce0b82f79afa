package pump

import (
	"crypto/subtle"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/pumplab/pumplab/simulators/pumpwire"
)

// AccessPolicy is how a pump's keypad and service port authenticate biomed
// users and audit service work (Config.Access). nil is the legacy pump: one
// factory code (Config.ServiceCode) for everyone, no lockout, no audit.
type AccessPolicy struct {
	// FactoryCode is the shared code printed in the service manual; it is
	// accepted only while PerUser is off. Default Config.ServiceCode.
	FactoryCode string
	// PerUser is the access-codes control: only the per-user codes of Users
	// log in; the factory code is refused (SVC-FACTORY).
	PerUser bool
	// Users maps user names to their codes (copied at New; see RotateCode,
	// RevokeUser).
	Users map[string]string
	// MinLength is the minimum number of digits of a per-user code
	// (RotateCode); default 6.
	MinLength int
	// CodeLifetime is how long (lab time) a code stays valid after it was set
	// (RotateCode, or New for Users); 0 = forever. An expired code is
	// refused (SVC-CODE-EXPIRED).
	CodeLifetime time.Duration
	// MaxFailures locks the keypad after that many failed logins in a row
	// (SVC-LOCKED) for LockoutFor; 0 = never.
	MaxFailures int
	// LockoutFor is the lab-time length of a lockout; default 15 min.
	LockoutFor time.Duration
	// ServiceAudit is the service-mode-audit control: changing a setting
	// needs an open service session (ServiceEnter) with a work order that
	// WorkOrderCheck accepts and, with RequireReason, a reason. Reading the
	// configuration does not.
	ServiceAudit bool
	// WorkOrderCheck says whether workOrder is an open work order for
	// pumpID (the CMMS); nil accepts any non-empty work order.
	WorkOrderCheck func(pumpID, workOrder string) bool
	// RequireReason requires a reason on ServiceEnter.
	RequireReason bool
	// SessionTimeout ends a session idle for that long (lab time); default
	// 15 min.
	SessionTimeout time.Duration
	// Unauthenticated is the legacy service-port weakness: the service port
	// takes commands without LOGIN.
	Unauthenticated bool
}

// access is the runtime state of the policy. Guarded by Pump.mu.
type access struct {
	pol       AccessPolicy
	codes     map[string]userCode
	failures  int
	lockedTil time.Time
	sessions  map[string]*session
	nextSess  uint64
}

type userCode struct {
	code  string
	setAt time.Time
}

type session struct {
	id        string
	user      string
	opened    time.Time
	lastUsed  time.Time
	workOrder string
	reason    string
	inService bool // ServiceEnter succeeded
	anonymous bool // opened without login (Unauthenticated service port)
}

func (p *Pump) initAccess() {
	pol := AccessPolicy{FactoryCode: p.cfg.ServiceCode}
	if p.cfg.Access != nil {
		pol = *p.cfg.Access
		if pol.FactoryCode == "" {
			pol.FactoryCode = p.cfg.ServiceCode
		}
	}
	if pol.MinLength <= 0 {
		pol.MinLength = 6
	}
	if pol.LockoutFor <= 0 {
		pol.LockoutFor = 15 * time.Minute
	}
	if pol.SessionTimeout <= 0 {
		pol.SessionTimeout = 15 * time.Minute
	}
	a := &access{pol: pol, codes: map[string]userCode{}, sessions: map[string]*session{}}
	now := p.now()
	for u, c := range pol.Users {
		a.codes[u] = userCode{code: c, setAt: now}
	}
	a.pol.Users = nil
	p.acc = a
}

// checkCode authenticates user with code under the policy (lockout,
// factory code, per-user codes, expiry) and reports refusals. Caller holds
// p.mu.
func (p *Pump) checkCode(user, code, via string) *Rejection {
	a := p.acc
	now := p.now()
	ctl := a.pol.PerUser || a.pol.MaxFailures > 0
	fail := func(r *Rejection) *Rejection {
		p.addLog(LogEntry{Kind: LogService, Source: via, User: user, Action: "login_failed", Code: r.Code, Detail: r.Reason})
		if ctl {
			p.control(CtlAccessCodes, ActionBlocked, user, fmt.Sprintf("login of %q via %s refused: %s: %s", user, via, r.Code, r.Reason))
		}
		return r
	}
	if now.Before(a.lockedTil) {
		return fail(reject("SVC-LOCKED", "keypad locked after %d failed logins until %s", a.pol.MaxFailures, a.lockedTil.UTC().Format(time.RFC3339)))
	}
	var r *Rejection
	uc, known := a.codes[user]
	switch {
	case a.pol.PerUser && eq(code, a.pol.FactoryCode) && (!known || !eq(code, uc.code)):
		r = reject("SVC-FACTORY", "the shared factory code is disabled; use your own code")
	case a.pol.PerUser && !known:
		r = reject("SVC-CODE", "unknown or revoked user %q", user)
	case a.pol.PerUser && !eq(code, uc.code):
		r = reject("SVC-CODE", "wrong access code for %q", user)
	case a.pol.PerUser && a.pol.CodeLifetime > 0 && now.Sub(uc.setAt) > a.pol.CodeLifetime:
		r = reject("SVC-CODE-EXPIRED", "code of %q expired %s ago: rotate it", user, now.Sub(uc.setAt)-a.pol.CodeLifetime)
	case !a.pol.PerUser && !eq(code, a.pol.FactoryCode) && (!known || !eq(code, uc.code)):
		r = reject("SVC-CODE", "wrong access code")
	}
	if r != nil {
		if r.Code != "SVC-CODE-EXPIRED" {
			a.failures++
		}
		r = fail(r)
		if a.pol.MaxFailures > 0 && a.failures >= a.pol.MaxFailures {
			a.lockedTil = now.Add(a.pol.LockoutFor)
			a.failures = 0
			p.addLog(LogEntry{Kind: LogService, Source: via, User: user, Action: "keypad_locked", Code: "SVC-LOCKED",
				Detail: fmt.Sprintf("%d failed logins; locked for %s", a.pol.MaxFailures, a.pol.LockoutFor)})
			p.control(CtlAccessCodes, ActionBlocked, user, fmt.Sprintf("keypad locked for %s after %d failed logins", a.pol.LockoutFor, a.pol.MaxFailures))
		}
		return r
	}
	a.failures = 0
	return nil
}

func eq(a, b string) bool { return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

// ServiceLogin logs user in at the keypad with code and returns a session
// id. Failures are logged and counted toward the lockout (codes SVC-CODE,
// SVC-FACTORY, SVC-LOCKED, SVC-CODE-EXPIRED).
func (p *Pump) ServiceLogin(user, code string) (string, error) {
	return p.serviceLogin(user, code, "keypad")
}

func (p *Pump) serviceLogin(user, code, via string) (string, error) {
	if user == "" || len(user) > 64 {
		return "", reject("SVC-USER", "user name empty or longer than 64")
	}
	p.mu.Lock()
	defer p.unlock()
	if r := p.checkCode(user, code, via); r != nil {
		return "", r
	}
	s := p.openSession(user, false)
	p.addLog(LogEntry{Kind: LogService, Source: via, User: user, Action: "login", Detail: "session " + s.id})
	if p.acc.pol.PerUser {
		p.control(CtlAccessCodes, ActionAudited, s.id, fmt.Sprintf("%q logged in via %s with a per-user code", user, via))
	}
	return s.id, nil
}

func (p *Pump) openSession(user string, anonymous bool) *session {
	a := p.acc
	a.nextSess++
	now := p.now()
	s := &session{id: fmt.Sprintf("%s-S%d", p.cfg.ID, a.nextSess), user: user, opened: now, lastUsed: now, anonymous: anonymous}
	a.sessions[s.id] = s
	return s
}

// session returns the live session id, ending it if it timed out. Caller
// holds p.mu.
func (p *Pump) session(id string) (*session, *Rejection) {
	s := p.acc.sessions[id]
	if s == nil {
		return nil, reject("SVC-SESSION", "no session %q: log in first", id)
	}
	now := p.now()
	if idle := now.Sub(s.lastUsed); idle > p.acc.pol.SessionTimeout {
		p.endSession(s, fmt.Sprintf("timed out after %s idle", idle))
		return nil, reject("SVC-EXPIRED", "session %s timed out after %s idle", id, idle)
	}
	s.lastUsed = now
	return s, nil
}

func (p *Pump) endSession(s *session, why string) {
	delete(p.acc.sessions, s.id)
	p.addLog(LogEntry{Kind: LogService, Source: "pump", User: s.user, Action: "session_end", Detail: s.id + " " + why})
	if s.inService {
		p.emit(pumpwire.EvServiceMode, nil, map[string]string{"on": "false", "user": s.user, "session": s.id, "reason": why})
	}
	if p.acc.pol.ServiceAudit {
		p.control(CtlServiceModeAudit, ActionAudited, s.id, fmt.Sprintf("session of %q ended: %s", s.user, why))
	}
}

// ServiceLogout ends a session.
func (p *Pump) ServiceLogout(id string) error {
	p.mu.Lock()
	defer p.unlock()
	s, r := p.session(id)
	if r != nil {
		return r
	}
	p.endSession(s, "logout")
	return nil
}

// ServiceEnter opens audited service work in a session: workOrder must be
// accepted by the policy's WorkOrderCheck (SVC-WORKORDER) and, with
// RequireReason, reason must be given (SVC-REASON). Therapy is not affected.
// The entry goes to the log, out as a service_mode event and, under
// service-mode-audit, as a ControlEvent.
func (p *Pump) ServiceEnter(id, workOrder, reason string) error {
	p.mu.Lock()
	defer p.unlock()
	s, r := p.session(id)
	if r != nil {
		return r
	}
	pol := p.acc.pol
	workOrder, reason = strings.TrimSpace(workOrder), strings.TrimSpace(reason)
	switch {
	case len(workOrder) > 64 || len(reason) > 200:
		r = reject("SVC-WORKORDER", "work order or reason too long")
	case pol.ServiceAudit && workOrder == "":
		r = reject("SVC-WORKORDER", "a work order is required")
	case pol.ServiceAudit && pol.WorkOrderCheck != nil && !pol.WorkOrderCheck(p.cfg.ID, workOrder):
		r = reject("SVC-WORKORDER", "work order %q is not open for pump %s", workOrder, p.cfg.ID)
	case pol.ServiceAudit && pol.RequireReason && reason == "":
		r = reject("SVC-REASON", "a reason is required")
	}
	if r != nil {
		p.addLog(LogEntry{Kind: LogService, Source: "local", User: s.user, Action: "service_denied", Code: r.Code, Detail: r.Reason})
		if pol.ServiceAudit {
			p.control(CtlServiceModeAudit, ActionBlocked, s.id, fmt.Sprintf("service entry by %q refused: %s: %s", s.user, r.Code, r.Reason))
		}
		return r
	}
	s.inService, s.workOrder, s.reason = true, workOrder, reason
	p.addLog(LogEntry{Kind: LogService, Source: "local", User: s.user, Action: "service_enter", Detail: fmt.Sprintf("session %s work order %q reason %q", s.id, workOrder, reason)})
	p.emit(pumpwire.EvServiceMode, nil, map[string]string{"on": "true", "user": s.user, "session": s.id, "work_order": workOrder, "reason": reason})
	if pol.ServiceAudit {
		p.control(CtlServiceModeAudit, ActionAudited, s.id, fmt.Sprintf("service mode entered by %q for work order %q: %s", s.user, workOrder, reason))
	}
	return nil
}

// ServiceSet changes a device setting (the keys of the config op) in a
// session. Under service-mode-audit it needs ServiceEnter first
// (SVC-AUDIT); every change is logged with the session's user and work
// order.
func (p *Pump) ServiceSet(id, key, value string) error {
	v, err := ParseSetting(key, value)
	p.mu.Lock()
	defer p.unlock()
	s, r := p.session(id)
	if r != nil {
		return r
	}
	if err != nil {
		return err
	}
	if p.acc.pol.ServiceAudit && !s.inService {
		r := reject("SVC-AUDIT", "changing %s needs service mode with a work order (SERVICE first)", key)
		p.addLog(LogEntry{Kind: LogService, Source: "local", User: s.user, Action: "change_denied", Code: r.Code, Detail: key + "=" + value})
		p.control(CtlServiceModeAudit, ActionBlocked, s.id, fmt.Sprintf("%q tried to set %s=%s outside service mode", s.user, key, value))
		return r
	}
	who := s.user
	if s.workOrder != "" {
		who += " wo:" + s.workOrder
	}
	p.applySettingLocked(Local, who, key, v)
	if p.acc.pol.ServiceAudit {
		p.control(CtlServiceModeAudit, ActionAudited, s.id, fmt.Sprintf("%q set %s=%s under work order %q", s.user, key, v, s.workOrder))
	}
	return nil
}

// ServiceShow returns the configuration dump to a logged-in session
// (reading needs no service mode).
func (p *Pump) ServiceShow(id string) (ConfigDump, error) {
	p.mu.Lock()
	defer p.unlock()
	s, r := p.session(id)
	if r != nil {
		return ConfigDump{}, r
	}
	p.addLog(LogEntry{Kind: LogService, Source: "local", User: s.user, Action: "show_config", Detail: s.id})
	return p.configDumpLocked(), nil
}

// RotateCode sets user's code (adding the user): at least MinLength digits,
// different from the factory code and from the current one.
func (p *Pump) RotateCode(user, code string) error {
	p.mu.Lock()
	defer p.unlock()
	a := p.acc
	switch {
	case user == "" || len(user) > 64:
		return reject("SVC-USER", "user name empty or longer than 64")
	case len(code) < a.pol.MinLength || len(code) > 16 || strings.Trim(code, "0123456789") != "":
		return reject("SVC-CODE-WEAK", "a code is %d to 16 digits", a.pol.MinLength)
	case code == a.pol.FactoryCode:
		return reject("SVC-CODE-WEAK", "the factory code cannot be a user code")
	case a.codes[user].code == code:
		return reject("SVC-CODE-WEAK", "the new code must differ from the current one")
	}
	a.codes[user] = userCode{code: code, setAt: p.now()}
	p.addLog(LogEntry{Kind: LogService, Source: "admin", User: user, Action: "code_rotated"})
	if a.pol.PerUser {
		p.control(CtlAccessCodes, ActionAudited, user, fmt.Sprintf("access code of %q rotated", user))
	}
	return nil
}

// RevokeUser removes user's code and ends the user's sessions.
func (p *Pump) RevokeUser(user string) error {
	p.mu.Lock()
	defer p.unlock()
	if _, ok := p.acc.codes[user]; !ok {
		return reject("SVC-USER", "no user %q", user)
	}
	delete(p.acc.codes, user)
	ids := make([]string, 0)
	for id, s := range p.acc.sessions {
		if s.user == user {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	for _, id := range ids {
		p.endSession(p.acc.sessions[id], "user revoked")
	}
	p.addLog(LogEntry{Kind: LogService, Source: "admin", User: user, Action: "user_revoked"})
	if p.acc.pol.PerUser {
		p.control(CtlAccessCodes, ActionAudited, user, fmt.Sprintf("access code of %q revoked", user))
	}
	return nil
}

// openUnauthenticated opens a session without a code (the legacy service
// port); it fails unless the policy has Unauthenticated.
func (p *Pump) openUnauthenticated(via string) (string, error) {
	p.mu.Lock()
	defer p.unlock()
	if !p.acc.pol.Unauthenticated {
		return "", reject("SVC-SESSION", "log in first")
	}
	s := p.openSession("anonymous", true)
	p.addLog(LogEntry{Kind: LogService, Source: via, User: "anonymous", Action: "login_unauthenticated", Detail: s.id})
	return s.id, nil
}
