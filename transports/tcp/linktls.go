package tcp

import (
	"crypto/tls"
	"errors"
	"net"
	"slices"
	"sync/atomic"
)

// sessionCacheSize is how many TLS sessions a session's cache keeps: its
// links all go to one connector under one server name, so one key.
const sessionCacheSize = 4

// maxResumeRetries bounds how many times in a row connect redials after a
// link whose ticket the connector did not take (errNotResumed).
const maxResumeRetries = 2

// errNotResumed is a resuming link's handshake that the connector
// answered with a full handshake: the link is dropped (see linkTLS).
var errNotResumed = errors.New("tcp: the connector did not resume the TLS session")

// linkTLS holds the TLS client configs of one agent session's links.
//
// They are made once per session and shared by every link (a tls.Conn
// keeps its config for life, so a clone per link stayed allocated as long
// as the link). full carries a session cache, so that links after the
// first resume the TLS session instead of running a full handshake: no
// certificate, signature or chain parse per link. Resuming keeps
// verification: crypto/tls checks a resumed session's verified chains
// again against RootCAs, the server name and the time, and calls
// VerifyConnection; a connector that cannot decrypt the ticket gets a
// full, verified handshake.
//
// resume, used while the cache holds a session, offers classical key
// exchanges only (X25519 first, see classicalCurves) instead of the
// hybrid X25519MLKEM768 first: ML-KEM is most of a resumed handshake's
// CPU. A resumed handshake's keys derive from the resumed session's
// secret as well as from the key exchange, so the post-quantum protection
// of the full handshake that began the chain carries over. A link that
// offered classical key exchanges only and was not resumed would have
// none: resume's VerifyConnection refuses it (errNotResumed) and drops the
// cache entry, so that the redial runs a full handshake with full.
type linkTLS struct {
	full   *tls.Config
	resume *tls.Config // nil: always full
	cache  tls.ClientSessionCache
	key    string      // the cache key crypto/tls uses: the server name
	off    atomic.Bool // the connector refused a resuming hello: full only
}

// newLinkTLS returns the link configs for base and the connector's addr:
// base's server name defaults to addr's host. There is no session cache
// when base has VerifyPeerCertificate, which crypto/tls does not call on
// resumed connections, and no classical resume config when base brings
// its own cache or restricts key exchanges to a list without X25519. nil
// when base is nil.
func newLinkTLS(base *tls.Config, addr string) *linkTLS {
	if base == nil {
		return nil
	}
	full := base.Clone()
	if full.ServerName == "" {
		if host, _, err := net.SplitHostPort(addr); err == nil {
			full.ServerName = host
		}
	}
	l := &linkTLS{full: full}
	if full.ClientSessionCache != nil || full.VerifyPeerCertificate != nil || full.SessionTicketsDisabled {
		return l
	}
	l.cache = tls.NewLRUClientSessionCache(sessionCacheSize)
	full.ClientSessionCache = l.cache
	if full.ServerName == "" || (len(full.CurvePreferences) > 0 && !slices.Contains(full.CurvePreferences, tls.X25519)) {
		return l
	}
	l.key = full.ServerName
	resume := full.Clone()
	resume.CurvePreferences = classicalCurves(full.CurvePreferences)
	verify := full.VerifyConnection
	resume.VerifyConnection = func(cs tls.ConnectionState) error {
		if !cs.DidResume {
			l.cache.Put(l.key, nil)
			return errNotResumed
		}
		if verify != nil {
			return verify(cs)
		}
		return nil
	}
	l.resume = resume
	return l
}

// classicalCurves returns the key exchanges a resuming link offers: those
// of prefs (nil: Go's defaults) without the post-quantum hybrids.
// crypto/tls sends a key share for X25519 only, the first of them in its
// own order; a connector without X25519 asks for another (P-256) with a
// HelloRetryRequest.
func classicalCurves(prefs []tls.CurveID) []tls.CurveID {
	if len(prefs) == 0 {
		return []tls.CurveID{tls.X25519, tls.CurveP256, tls.CurveP384, tls.CurveP521}
	}
	return slices.DeleteFunc(slices.Clone(prefs), func(c tls.CurveID) bool {
		switch c {
		case tls.X25519, tls.CurveP256, tls.CurveP384, tls.CurveP521:
			return false
		}
		return true
	})
}

// config returns the config of the next link: resume while the cache
// holds a session to resume, else full.
func (l *linkTLS) config() *tls.Config {
	if l.resume != nil && !l.off.Load() {
		if cs, ok := l.cache.Get(l.key); ok && cs != nil {
			return l.resume
		}
	}
	return l.full
}

// failed tells l that a link dialled with cfg (from config) failed with
// err before it was made, and reports whether the failure is the
// resumption's, worth a redial: when cfg was resume, the cached session is
// dropped, so the redial runs a full handshake with full; when the
// connector answered the resuming hello with an alert (one that takes
// none of the classical key exchanges alone), resume is not used again by
// this session.
func (l *linkTLS) failed(cfg *tls.Config, err error) bool {
	if l.resume == nil || cfg != l.resume {
		return false
	}
	l.cache.Put(l.key, nil)
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "remote error" {
		// crypto/tls reports an alert from the peer this way.
		l.off.Store(true)
		return true
	}
	return errors.Is(err, errNotResumed)
}
