package core

import "github.com/iofog/iofog-connector/core/ports"

// SetPortPool replaces the pool new mappings take their ports from, as
// when the settings are reloaded. Running mappings keep their ports, in the
// new pool or not, and keep relaying; a port the new pool does not have is
// not handed out again once its mapping is removed.
func (m *Manager) SetPortPool(pool []int) ports.PoolChange {
	return m.cfg.Ports.SetPool(pool)
}
