//go:build !linux

package pipe

// poll is empty where directions cannot park: each has a goroutine.
type poll struct{}

func (h *half) parkable() bool { return false }
func (h *half) run()           {}
func (h *half) wake()          {}
func (h *half) forget()        {}
