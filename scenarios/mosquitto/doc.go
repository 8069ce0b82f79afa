// Package mosquitto runs the scenario suite's control scenarios on the
// in-process lab with Debian's mosquitto as the broker instead of the
// embedded one: the fleet and the pump server must work with any MQTT broker.
package mosquitto
