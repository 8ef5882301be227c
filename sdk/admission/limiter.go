package admission

import (
	"net"
	"net/netip"
	"sync"
)

// Limiter counts the places each source holds at once (handshakes not yet
// authenticated, clients waiting for a link) and refuses a place beyond a
// per-source cap or a total cap. Its memory is one map entry per source
// holding a place. It is safe for concurrent use.
type Limiter struct {
	perSource, total int

	mu   sync.Mutex
	held map[string]int
	n    int
}

// NewLimiter returns a limiter that lets one source hold at most perSource
// places and all sources together at most total. Zero (or less) means no
// cap of that kind.
func NewLimiter(perSource, total int) *Limiter {
	return &Limiter{perSource: perSource, total: total, held: map[string]int{}}
}

// Acquire takes a place for src. It returns ok false, taking nothing,
// when src already holds its cap or the limiter is full; otherwise release
// gives the place back. release may be called more than once: only the
// first call counts.
func (l *Limiter) Acquire(src string) (release func(), ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.perSource > 0 && l.held[src] >= l.perSource {
		return nil, false
	}
	if l.total > 0 && l.n >= l.total {
		return nil, false
	}
	l.held[src]++
	l.n++
	var once sync.Once
	return func() { once.Do(func() { l.release(src) }) }, true
}

func (l *Limiter) release(src string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n--
	if l.held[src] <= 1 {
		delete(l.held, src)
		return
	}
	l.held[src]--
}

// Held returns the places src holds now.
func (l *Limiter) Held(src string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.held[src]
}

// Len returns the places held now, by every source.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n
}

// Source names the source of a remote address for [Limiter] and [Tally]:
// the IP address for IPv4 (and IPv4-mapped IPv6), the /64 prefix for IPv6
// (one subscriber usually holds a whole /64, so a per-address cap would
// not hold one back), and the address's text for anything else. A nil
// address is "unknown".
func Source(addr net.Addr) string {
	if addr == nil {
		return "unknown"
	}
	var ip netip.Addr
	switch a := addr.(type) {
	case *net.TCPAddr:
		ip, _ = netip.AddrFromSlice(a.IP)
	case *net.UDPAddr:
		ip, _ = netip.AddrFromSlice(a.IP)
	default:
		ap, err := netip.ParseAddrPort(addr.String())
		if err != nil {
			return addr.String()
		}
		ip = ap.Addr()
	}
	if !ip.IsValid() {
		return addr.String()
	}
	ip = ip.Unmap()
	if ip.Is4() {
		return ip.String()
	}
	p, err := ip.WithZone("").Prefix(64)
	if err != nil {
		return ip.String()
	}
	return p.String()
}

// DefaultPendingPerSource is the least number of handshakes one source may
// have pending (accepted, not yet authenticated) on one agent endpoint.
// An agent opens all its links at once, from one address: a legacy agent
// of a public mapping opens 60, so the cap must stay well above that.
const DefaultPendingPerSource = 128

// PendingPerSource returns the cap on pending handshakes per source of an
// endpoint that admits maxLinks links (zero: no link limit):
// [DefaultPendingPerSource], or twice maxLinks when that is more, so that
// an agent (re)opening all its links at once is never refused.
func PendingPerSource(maxLinks int) int {
	return max(DefaultPendingPerSource, 2*maxLinks)
}
