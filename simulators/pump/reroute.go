package pump

// Reroute moves the agent to brokerURL as a change of the network path
// would, without touching the pump: its stored server_address and its
// configuration stay as they are and no config_changed event is sent. The
// in-process lab uses it to put an on-path relay (a tap on the device
// network, REFERENCE.md ATK-03) between the pumps and their broker, where a
// container lab would place it on the wire. Like a server_address change,
// the agent announces online=false to the old broker, disconnects and
// connects to the new one; buffered messages follow. The URL must pass
// CheckServerAddress (loopback only).
func (a *Agent) Reroute(brokerURL string) error {
	if err := CheckServerAddress(brokerURL); err != nil {
		return err
	}
	a.move(brokerURL)
	return nil
}
