package pki_test

import (
	"crypto/tls"
	"fmt"
	"time"

	"github.com/pumplab/pumplab/clock"
	"github.com/pumplab/pumplab/lab/pki"
)

func Example() {
	clk := clock.NewFake(time.Date(2026, 1, 5, 8, 0, 0, 0, time.UTC))
	lab, err := pki.New(pki.Options{Clock: clk})
	if err != nil {
		panic(err)
	}
	if _, err := lab.Issue("pumpserver", pki.Service, nil); err != nil {
		panic(err)
	}
	pump, err := lab.Issue("pump-001", pki.Device, nil)
	if err != nil {
		panic(err)
	}
	fmt.Println(pump.Leaf.Subject.CommonName, pump.Leaf.SerialNumber, pump.Leaf.NotAfter)

	serverConf, _ := lab.ServerTLS("pumpserver")
	clientConf, _ := lab.ClientTLS("pump-001")
	ln, err := tls.Listen("tcp", "127.0.0.1:0", serverConf)
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	accepted := make(chan string)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			tc := c.(*tls.Conn)
			if err := tc.Handshake(); err != nil {
				accepted <- "refused: " + err.Error()
			} else {
				accepted <- "accepted " + tc.ConnectionState().PeerCertificates[0].Subject.CommonName
			}
			c.Close()
		}
	}()
	dial := func() {
		if c, err := tls.Dial("tcp", ln.Addr().String(), clientConf); err == nil {
			c.Write([]byte("x")) // a TLS 1.3 client learns of a refusal on its first I/O
			c.Close()
		}
		fmt.Println(<-accepted)
	}
	dial()
	if err := lab.Revoke("pump-001"); err != nil { // decommission
		panic(err)
	}
	dial()
	// Output:
	// pump-001 3 2026-01-12 08:00:00 +0000 UTC
	// accepted pump-001
	// refused: pki: verify peer pump-001 (serial 3): certificate revoked at 2026-01-05T08:00:00Z
}
