package hl7

import (
	"context"
	"errors"
	"net"
	"syscall"
	"testing"
)

// TestListenAddressInUseIsDetectable: a listener whose address is taken
// fails with an error callers can recognise (the in-process lab retries
// its start on fresh addresses when one it reserved was taken).
func TestListenAddressInUseIsDetectable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	s := New(Config{Addr: ln.Addr().String()})
	err = s.Start(context.Background())
	if err == nil {
		s.Close()
		t.Fatal("second listener on the same address started")
	}
	if !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("error %v does not wrap EADDRINUSE", err)
	}
}
