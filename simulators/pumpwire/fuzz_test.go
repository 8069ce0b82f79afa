package pumpwire

import (
	"testing"
)

// FuzzDecode feeds arbitrary topics and payloads to Decode: it must never
// panic, and whatever it accepts must validate again after re-encoding.
func FuzzDecode(f *testing.F) {
	for _, c := range Cases {
		f.Add(c.Topic, []byte(c.Payload))
	}
	f.Fuzz(func(t *testing.T, topic string, payload []byte) {
		id, env, body, err := Decode(topic, payload)
		if err != nil {
			return
		}
		b, err := Encode(env.ID, env.From, env.TS, env.Seq, body)
		if err != nil {
			t.Fatalf("re-encode accepted message: %v", err)
		}
		if _, _, _, err := Decode(Topic(id, mustKind(t, topic)), b); err != nil {
			t.Fatalf("re-encoded message refused: %v\n%s", err, b)
		}
	})
}

// FuzzDecodeEnvelope fuzzes the envelope alone.
func FuzzDecodeEnvelope(f *testing.F) {
	for _, c := range Cases {
		f.Add([]byte(c.Payload))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		_, _ = DecodeEnvelope(payload)
	})
}

func mustKind(t *testing.T, topic string) Kind {
	_, k, err := ParseTopic(topic)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
