package lab

// LinkPumpsToBroker is the device network's MQTT link between the pumps'
// comm modules and the broker (status, events, alarms up; commands down).
// Interpose on it re-points every pump of the fleet at the proxy, which must
// forward to the returned broker address byte for byte (a passive tap: the
// pumps' TLS, when the posture has it, goes through end to end).
const LinkPumpsToBroker Link = "pumps->broker"
