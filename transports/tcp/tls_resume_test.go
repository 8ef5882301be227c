package tcp_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/iofog/iofog-connector/sdk"
	"github.com/iofog/iofog-connector/sdk/transporttest"
	"github.com/iofog/iofog-connector/transports/tcp"
)

// handshakes records, through a client config's VerifyConnection (which
// crypto/tls calls on full and resumed handshakes alike), whether each of
// a session's TLS handshakes resumed.
type handshakes struct {
	mu      sync.Mutex
	resumed []bool
	curves  []tls.CurveID
}

func (h *handshakes) verify(cs tls.ConnectionState) error {
	h.mu.Lock()
	h.resumed = append(h.resumed, cs.DidResume)
	h.curves = append(h.curves, cs.CurveID)
	h.mu.Unlock()
	return nil
}

// check fails t if a full handshake used anything but the hybrid
// X25519MLKEM768 or a resumed one anything but X25519 (the session
// offers X25519 alone when it resumes).
func (h *handshakes) check(t *testing.T) {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, r := range h.resumed {
		want := tls.X25519MLKEM768
		if r {
			want = tls.X25519
		}
		if h.curves[i] != want {
			t.Errorf("handshake %d (resumed %v): key exchange %v, want %v", i, r, h.curves[i], want)
		}
	}
}

func (h *handshakes) get() []bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]bool(nil), h.resumed...)
}

// link runs one pool link of s to its end: Accept dials it, ep binds it.
// It returns Accept's error.
func link(t *testing.T, ctx context.Context, s sdk.Session, ep sdk.Endpoint) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	type res struct {
		err error
	}
	done := make(chan res, 1)
	go func() {
		st, err := s.Accept(ctx)
		if st != nil {
			st.Close()
		}
		done <- res{err}
	}()
	opened := make(chan struct{})
	go func() {
		defer close(opened)
		st, err := ep.Open(ctx)
		if err == nil {
			st.Close()
		}
	}()
	r := <-done
	if r.err != nil {
		cancel() // the Open above waits for a link that will not come
	}
	<-opened
	return r.err
}

// failedAtLeast returns ep's count of failed handshakes once it reaches
// n, or after 5 seconds: the endpoint counts a failure after the agent
// has seen it.
func failedAtLeast(ep sdk.Endpoint, n int64) int64 {
	deadline := time.Now().Add(5 * time.Second)
	for {
		f := ep.(sdk.StatsReporter).Stats().Failed
		if f >= n || time.Now().After(deadline) {
			return f
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// linksOver dials one agent session with cli to an endpoint listening
// with srv, makes n links on it and returns the handshakes it saw.
func linksOver(t *testing.T, srv, cli *tls.Config, n int) *handshakes {
	t.Helper()
	r := resumeSession(t, srv, cli)
	r.links(t, r.ep, n, "")
	return r.hs
}

// resumed is an agent session of the resumption tests: a tcp endpoint
// with TLS srv and a session dialled to it with cli, whose handshakes hs
// records. Both end with the test.
type resumed struct {
	tr   *tcp.Transport
	ep   sdk.Endpoint
	addr string
	ctx  context.Context
	s    sdk.Session
	hs   *handshakes
}

func resumeSession(t *testing.T, srv, cli *tls.Config) *resumed {
	t.Helper()
	r := &resumed{hs: &handshakes{}, tr: newTransport(t)}
	cli.VerifyConnection = r.hs.verify
	r.ep, r.addr = listenEP(t, r.tr, sdk.EndpointConfig{Passcode: "resume", TLS: srv})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	r.ctx = ctx
	s, err := r.tr.Dial(ctx, sdk.DialConfig{Addr: r.addr, Passcode: "resume", TLS: cli})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	r.s = s
	return r
}

// links makes n links of the session to ep, failing the test on any
// error; what says when ("" or "after the restart").
func (r *resumed) links(t *testing.T, ep sdk.Endpoint, n int, what string) {
	t.Helper()
	for i := range n {
		if err := link(t, r.ctx, r.s, ep); err != nil {
			t.Fatalf("link %d%s: %v", i, what, err)
		}
	}
}

// TestTLSLinksResume: a session's links after its first resume the TLS
// session (no certificate, signature or chain verification per refill),
// and the caller's config is left as it was.
func TestTLSLinksResume(t *testing.T) {
	watchdog(t, 60*time.Second)
	srv, cli := transporttest.TLSConfigs(t)
	const n = 4
	hs := linksOver(t, srv, cli, n)
	got := hs.get()
	// Version 2 and later also run a control link, which resumes too.
	if len(got) < n {
		t.Fatalf("%d handshakes, want at least %d", len(got), n)
	}
	if got[0] {
		t.Errorf("the first handshake resumed: %v", got)
	}
	resumed := 0
	for _, r := range got[1:] {
		if r {
			resumed++
		}
	}
	// Every handshake after the first has a ticket to use, except one
	// that ran before the first link read its ticket (the control link
	// starts with the first link).
	if resumed < len(got)-2 {
		t.Errorf("%d of %d handshakes after the first resumed: %v", resumed, len(got)-1, got)
	}
	hs.check(t)
	if cli.ClientSessionCache != nil || cli.CurvePreferences != nil {
		t.Error("Dial changed the caller's config")
	}
}

// TestTLSResumeAfterConnectorRestart: when the connector restarts (new
// ticket keys) the session's next link, offered with X25519 alone for
// resumption, is refused by the agent once the connector answers with a
// full handshake, and redialled with the hybrid key exchange: no link
// ever runs a full handshake on X25519 alone. Links after it resume
// again.
func TestTLSResumeAfterConnectorRestart(t *testing.T) {
	watchdog(t, 60*time.Second)
	srv, cli := transporttest.TLSConfigs(t)
	r := resumeSession(t, srv.Clone(), cli)
	hs, tr, ep, addr := r.hs, r.tr, r.ep, r.addr
	r.links(t, ep, 2, "")
	// The control link starts with the first link: let its handshake
	// land before the restart, so that every handshake counted after it
	// is with the restarted connector.
	for deadline := time.Now().Add(5 * time.Second); len(hs.get()) < 3; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("handshakes before the restart: %v, want 2 links and the control link", hs.get())
		}
	}
	before := len(hs.get())
	ep.Close()
	// A fresh clone of the same identity: same certificate, new
	// automatic ticket keys, as after a restart.
	ep2, _ := listenEP(t, tr, sdk.EndpointConfig{Addr: addr, Passcode: "resume", TLS: srv.Clone()})
	r.links(t, ep2, 2, " after the restart")
	got := hs.get()[before:]
	if len(got) < 2 || got[0] || !got[len(got)-1] {
		t.Errorf("handshakes after the restart (resumed): %v, want a full one first and a resumed one last", got)
	}
	hs.check(t)
	// The refused try reached the connector as a failed handshake.
	if f := failedAtLeast(ep2, 1); f < 1 {
		t.Errorf("the connector counted %d failed handshakes, want the refused resumption", f)
	}
}

// TestTLSResumeStillVerifies: a session holding a ticket from a trusted
// connector still fails closed when the address later answers with a
// certificate it does not trust: the ticket is of no use there, and the
// full handshake verifies.
func TestTLSResumeStillVerifies(t *testing.T) {
	watchdog(t, 60*time.Second)
	srv, cli := transporttest.TLSConfigs(t)
	other, _ := transporttest.TLSConfigs(t) // a certificate cli does not trust
	r := resumeSession(t, srv, cli)
	hs, tr, ep, addr := r.hs, r.tr, r.ep, r.addr
	r.links(t, ep, 2, "")
	if got := hs.get(); !got[len(got)-1] {
		t.Fatalf("the session holds no ticket before the switch: resumed %v", got)
	}
	ep.Close()
	ep2, _ := listenEP(t, tr, sdk.EndpointConfig{Addr: addr, Passcode: "resume", TLS: other})
	err := link(t, r.ctx, r.s, ep2)
	var unknown x509.UnknownAuthorityError
	if !errors.As(err, &unknown) {
		t.Fatalf("link to an untrusted certificate: err %v, want x509.UnknownAuthorityError", err)
	}
}

// TestTLSVerifyPeerCertificateEveryLink: a config with
// VerifyPeerCertificate, which crypto/tls does not call on resumed
// connections, gets no session cache: the callback sees every link.
func TestTLSVerifyPeerCertificateEveryLink(t *testing.T) {
	watchdog(t, 60*time.Second)
	srv, cli := transporttest.TLSConfigs(t)
	var (
		mu    sync.Mutex
		calls int
	)
	cli.VerifyPeerCertificate = func([][]byte, [][]*x509.Certificate) error {
		mu.Lock()
		calls++
		mu.Unlock()
		return nil
	}
	const n = 3
	got := linksOver(t, srv, cli, n).get()
	mu.Lock()
	defer mu.Unlock()
	if calls != len(got) || calls < n {
		t.Errorf("VerifyPeerCertificate called %d times for %d handshakes (want one each, at least %d)", calls, len(got), n)
	}
	for i, r := range got {
		if r {
			t.Errorf("handshake %d resumed", i)
		}
	}
}

// TestTLSResumeHybridOnlyConnector: a connector that takes the hybrid key
// exchange alone refuses the classical resuming hello with an alert; the
// session redials that link with a full hybrid handshake and stops
// offering classical resumption, so every link is made.
func TestTLSResumeHybridOnlyConnector(t *testing.T) {
	watchdog(t, 60*time.Second)
	srv, cli := transporttest.TLSConfigs(t)
	srv.CurvePreferences = []tls.CurveID{tls.X25519MLKEM768}
	r := resumeSession(t, srv, cli)
	hs, ep := r.hs, r.ep
	r.links(t, ep, 4, "")
	got := hs.get()
	hs.mu.Lock()
	curves := append([]tls.CurveID(nil), hs.curves...)
	hs.mu.Unlock()
	resumed := 0
	for i, c := range curves {
		if c != tls.X25519MLKEM768 {
			t.Errorf("handshake %d: key exchange %v, want X25519MLKEM768", i, c)
		}
		if got[i] {
			resumed++
		}
	}
	if resumed == 0 {
		t.Errorf("no handshake resumed (with the hybrid) after the refusal: %v", got)
	}
	// The control link and a pool link may offer it at the same time.
	if f := failedAtLeast(ep, 1); f < 1 || f > 2 {
		t.Errorf("the connector counted %d failed handshakes, want the refused resuming hellos (1 or 2)", f)
	}
}
