package clock

import "time"

// NewScaledAt returns a scaled clock that read epoch at the wall time anchor
// and advances speed lab seconds per wall second. Processes (or containers)
// that share the host's wall clock and the same anchor, epoch and speed read
// the same lab time: the container lab starts every role with them. A speed
// below or equal to zero means 1.
func NewScaledAt(anchor, epoch time.Time, speed float64) *Scaled {
	if speed <= 0 {
		speed = 1
	}
	return &Scaled{epoch: epoch, wallStart: anchor, speed: speed}
}
