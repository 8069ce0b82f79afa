package lab

import (
	"context"
	"crypto/tls"
)

// Foothold is what an attacker holds after compromising one identity of
// the hospital (a service's host, a pump's comm module): the identity's
// client certificate and key, and its broker login. Attack scenarios whose
// precondition is such a compromise (REFERENCE.md §3.1 "Pre:") start from a
// Foothold, so that the control under test is the only one in the way.
type Foothold struct {
	Identity string
	// TLS is the identity's client TLS configuration (certificate, key and
	// the lab CA); nil when the posture has no PKI.
	TLS *tls.Config
	// MQTTURL, MQTTUsername and MQTTPassword are the broker and the
	// identity's login on it.
	MQTTURL, MQTTUsername, MQTTPassword string
	// Outbox returns the messages the identity sent so far, as sent (its own
	// message log on the compromised host): for the BCMA, every PCD-03.
	// Nil when the identity keeps no such log.
	Outbox func(ctx context.Context) ([][]byte, error)
	// PushLibrary is the pump server's administrator function an attacker
	// with server admin uses (REFERENCE.md ATK-19 "Pre: attacker has server
	// admin"): push the library bundle at url (any lab address, e.g. the
	// attacker's own) to pumps, signed as server commands. Nil for other
	// identities.
	PushLibrary func(ctx context.Context, version, url, hash string, pumpIDs ...string) (map[string]LibraryPush, error)
}

// Adversary is implemented by labs that can hand a scenario a foothold. It
// is optional: a scenario that needs it and gets a lab without it reports
// Not Applicable.
type Adversary interface {
	// Compromise returns the foothold of identity: a service name
	// (pumpserver, emar-bcma, ehr, alarm-manager) or a pump id.
	Compromise(ctx context.Context, identity string) (Foothold, error)
}
