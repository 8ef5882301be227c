package tcp

import (
	"crypto/tls"
	"errors"
	"net"
	"slices"
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
// resume, used while the cache holds a session, offers X25519 alone as
// key exchange instead of the hybrid X25519MLKEM768 first: ML-KEM is most
// of a resumed handshake's CPU. A resumed handshake's keys derive from
// the resumed session's secret as well as from the key exchange, so the
// post-quantum protection of the full handshake that began the chain
// carries over. A link that offered X25519 alone and was not resumed
// would have none: resume's VerifyConnection refuses it (errNotResumed)
// and drops the cache entry, so that the redial runs a full handshake
// with full.
type linkTLS struct {
	full   *tls.Config
	resume *tls.Config // nil: always full
	cache  tls.ClientSessionCache
	key    string // the cache key crypto/tls uses: the server name
}

// newLinkTLS returns the link configs for base and the connector's addr:
// base's server name defaults to addr's host. There is no session cache
// when base has VerifyPeerCertificate, which crypto/tls does not call on
// resumed connections, and no X25519-only resume config when base brings
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
	resume.CurvePreferences = []tls.CurveID{tls.X25519}
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

// config returns the config of the next link: resume while the cache
// holds a session to resume, else full.
func (l *linkTLS) config() *tls.Config {
	if l.resume != nil {
		if cs, ok := l.cache.Get(l.key); ok && cs != nil {
			return l.resume
		}
	}
	return l.full
}
