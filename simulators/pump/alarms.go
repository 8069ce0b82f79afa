package pump

import (
	"fmt"
	"time"

	"github.com/pumplab/pumplab/simulators/pumpwire"
)

// AlarmCode names an alarm condition of the catalogue; it is the code sent
// in pumpwire.Alarm.Code.
type AlarmCode string

// The alarm catalogue codes (REFERENCE.md §5.5).
const (
	AlarmOcclusionDown    AlarmCode = "occlusion_downstream"
	AlarmOcclusionUp      AlarmCode = "occlusion_upstream"
	AlarmAirInLine        AlarmCode = "air_in_line"
	AlarmDoorOpen         AlarmCode = "door_open"
	AlarmFreeFlow         AlarmCode = "free_flow"
	AlarmSystemFault      AlarmCode = "system_fault"
	AlarmBatteryDepleted  AlarmCode = "battery_depleted"
	AlarmBatteryLow       AlarmCode = "battery_low"
	AlarmInfusionComplete AlarmCode = "infusion_complete"
	AlarmNearEnd          AlarmCode = "near_end"
	AlarmPausedTooLong    AlarmCode = "paused_too_long"
	AlarmOverInfusion     AlarmCode = "over_infusion"
	AlarmContainerEmpty   AlarmCode = "container_empty"
	AlarmPCALimit         AlarmCode = "pca_limit"
	AlarmCommLoss         AlarmCode = "comm_loss"
)

// Action is what the pump does when an alarm starts.
type Action string

// Alarm actions.
const (
	ActStop     Action = "stop"     // delivery stops on the channel (every channel for pump-level alarms)
	ActContinue Action = "continue" // delivery continues
	ActKVO      Action = "kvo"      // the channel drops to its KVO rate
	ActPaused   Action = "paused"   // the channel stays paused
)

// AlarmDef is one row of the alarm catalogue.
type AlarmDef struct {
	Code     AlarmCode
	MDC      int    // IEEE 11073 event code; 0 where REFERENCE.md gives no verified number
	MDCRef   string // IEEE 11073 reference id (or vendor/IPEC name)
	Text     string // text shown on the pump and sent in the alarm
	Priority string // PH, PM, PL, PN
	Type     string // ST technical, SA advisory, SP physiological
	Action   Action
	PumpWide bool // raised on the pump rather than on one channel
}

// Stops reports whether the alarm stops delivery.
func (d AlarmDef) Stops() bool { return d.Action == ActStop }

// Catalogue is the pump's alarm catalogue (REFERENCE.md §5.5, codes from §4.7).
var Catalogue = []AlarmDef{
	{AlarmOcclusionDown, 196940, "MDC_EVT_FLUID_LINE_OCCL", "Downstream occlusion", "PH", "ST", ActStop, false},
	{AlarmOcclusionUp, 0, "MDC_EVT_FLUID_LINE_OCCL_PROXIMAL", "Upstream occlusion", "PH", "ST", ActStop, false},
	{AlarmAirInLine, 0, "MDC_EVT_FLUID_LINE_AIR", "Air in line", "PH", "ST", ActStop, false},
	{AlarmDoorOpen, 196842, "MDC_EVT_DOOR_OR_HANDLE_POSN_PROB", "Door open", "PH", "ST", ActStop, false},
	{AlarmFreeFlow, 197206, "MDC_EVT_PUMP_FLOW_FREE", "Free flow", "PH", "ST", ActStop, false},
	{AlarmSystemFault, 196660, "MDC_EVT_INOP", "System fault", "PH", "ST", ActStop, true},
	{AlarmBatteryDepleted, 196800, "MDC_EVT_BATT_FAIL", "Battery depleted", "PH", "ST", ActStop, true},
	{AlarmBatteryLow, 196802, "MDC_EVT_BATT_LO", "Battery low", "PM", "ST", ActContinue, true},
	{AlarmInfusionComplete, 0, "MDC_EVT_PUMP_DELIV_COMP", "Infusion complete - KVO", "PM", "SA", ActKVO, false},
	{AlarmNearEnd, 203320, "MDC_EVT_ADVIS_PUMP_SYRINGE_REPLACE_WARN", "Near end of infusion", "PL", "SA", ActContinue, false},
	{AlarmPausedTooLong, 196616, "MDC_EVT_ALARM", "Channel paused too long", "PM", "ST", ActPaused, false},
	{AlarmOverInfusion, 0, "MDC_EVT_HI_GT_LIM", "Over-infusion", "PH", "ST", ActKVO, false},
	{AlarmContainerEmpty, 196634, "MDC_EVT_EMPTY", "Container empty", "PH", "ST", ActStop, false},
	{AlarmPCALimit, 0, "MDC_EVT_PUMP_PCA_LIMIT", "PCA dose limit reached - KVO", "PM", "ST", ActKVO, false},
	{AlarmCommLoss, 0, "MDC_EVT_COMM_STATUS_CHANGE", "Communication lost", "PN", "SA", ActContinue, true},
}

// LookupAlarm returns the catalogue row of code.
func LookupAlarm(code AlarmCode) (AlarmDef, bool) {
	for _, d := range Catalogue {
		if d.Code == code {
			return d, true
		}
	}
	return AlarmDef{}, false
}

// ActiveAlarm is one alarm instance that has started and not ended.
type ActiveAlarm struct {
	AlarmID string // stable for start and end
	Def     AlarmDef
	Channel string // "" for pump-wide alarms
	Start   time.Time
}

// Wire returns the pumpwire form of one transition of the alarm.
func (a ActiveAlarm) Wire(phase string) pumpwire.Alarm {
	return pumpwire.Alarm{
		AlarmID:  a.AlarmID,
		Code:     string(a.Def.Code),
		MDC:      a.Def.MDC,
		Text:     a.Def.Text,
		Phase:    phase,
		Priority: a.Def.Priority,
		Type:     a.Def.Type,
		Channel:  a.Channel,
		Stops:    a.Def.Stops(),
	}
}

// raise starts an alarm (or returns the active instance of the same code on
// the same channel). Caller holds p.mu and applies the channel action.
func (p *Pump) raise(code AlarmCode, ch string, why string) *ActiveAlarm {
	for _, a := range p.alarms {
		if a.Def.Code == code && a.Channel == ch {
			return a
		}
	}
	def, ok := LookupAlarm(code)
	if !ok {
		panic(fmt.Sprintf("pump: alarm code %q not in catalogue", code))
	}
	p.nextAlarm++
	a := &ActiveAlarm{AlarmID: fmt.Sprintf("%s-A%d", p.cfg.ID, p.nextAlarm), Def: def, Channel: ch, Start: p.now()}
	p.alarms = append(p.alarms, a)
	p.addLog(LogEntry{Kind: LogAlarm, Source: "pump", Channel: ch, Action: "alarm_start", Code: string(code),
		Detail: fmt.Sprintf("%s %s (%s) %s", a.AlarmID, def.Text, def.Priority, why)})
	w := a.Wire(pumpwire.PhaseStart)
	p.pending = append(p.pending, Output{Time: a.Start, Alarm: &w})
	return a
}

// endAlarm ends an active alarm. Caller holds p.mu.
func (p *Pump) endAlarm(a *ActiveAlarm, why string) {
	for i, x := range p.alarms {
		if x == a {
			p.alarms = append(p.alarms[:i], p.alarms[i+1:]...)
			p.addLog(LogEntry{Kind: LogAlarm, Source: "pump", Channel: a.Channel, Action: "alarm_end",
				Code: string(a.Def.Code), Detail: a.AlarmID + " " + why})
			w := a.Wire(pumpwire.PhaseEnd)
			p.pending = append(p.pending, Output{Time: p.now(), Alarm: &w})
			return
		}
	}
}

// findAlarm returns the active alarm of code on ch.
func (p *Pump) findAlarm(code AlarmCode, ch string) *ActiveAlarm {
	for _, a := range p.alarms {
		if a.Def.Code == code && a.Channel == ch {
			return a
		}
	}
	return nil
}

// endAlarmCode ends the alarm of code on ch if active.
func (p *Pump) endAlarmCode(code AlarmCode, ch string, why string) {
	if a := p.findAlarm(code, ch); a != nil {
		p.endAlarm(a, why)
	}
}

// stopAlarmOn reports whether a stop-class alarm holds channel ch (its own or
// a pump-wide one).
func (p *Pump) stopAlarmOn(ch string) bool {
	for _, a := range p.alarms {
		if a.Def.Stops() && (a.Channel == ch || a.Def.PumpWide) {
			return true
		}
	}
	return false
}

// Alarms returns the active alarms, oldest first.
func (p *Pump) Alarms() []ActiveAlarm {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]ActiveAlarm, len(p.alarms))
	for i, a := range p.alarms {
		out[i] = *a
	}
	return out
}
