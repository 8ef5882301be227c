package api

import (
	"fmt"
	"net/http"

	"github.com/iofog/iofog-connector/core"
)

// Health routes for probes (systemd watchers, Docker HEALTHCHECK,
// Kubernetes liveness and readiness probes). They are GET (and HEAD), take
// no body and reveal no mapping id, passcode or port, so that they need no
// credentials: a probe cannot easily carry a bearer token. Any API lock
// must exempt exactly these two read-only routes.
const (
	// HealthzPath answers 200 while the process serves its API.
	HealthzPath = "/healthz"
	// ReadyzPath answers 200 when the store is loaded and every mapping's
	// endpoints are listening, 503 with a JSON reason otherwise.
	ReadyzPath = "/readyz"
)

// mappingLister is what readiness needs beyond [Core]: every mapping's
// state. *core.Manager has it.
type mappingLister interface {
	List() []core.MappingStatus
}

// routeHealth registers the health routes on the server's mux.
func (s *Server) routeHealth() {
	s.mux.HandleFunc("GET "+HealthzPath, s.healthz)
	s.mux.HandleFunc("GET "+ReadyzPath, s.readyz)
}

// healthz reports that the process is up and its API answers.
func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	s.reply(w, http.StatusOK, map[string]any{"status": "ok"})
}

// readyz reports whether the connector can serve every mapping it holds.
// The daemon starts serving its API only once the store is loaded and the
// stored mappings were reopened, so an answer at all means the store is
// loaded; a mapping whose ports could not be reopened (or whose public
// port is not listening) makes it not ready. The answer carries counts
// only: ids stay behind the API's lock.
func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	l, ok := s.cfg.Core.(mappingLister)
	if !ok {
		// Fail closed: readiness that cannot be checked is not readiness.
		s.reply(w, http.StatusServiceUnavailable, map[string]any{
			"status": "error", "errormessage": "readiness: the core does not report its mappings",
		})
		return
	}
	all := l.List()
	down := 0
	for i := range all {
		if !listening(&all[i]) {
			down++
		}
	}
	if down > 0 {
		s.reply(w, http.StatusServiceUnavailable, map[string]any{
			"status":       "error",
			"errormessage": fmt.Sprintf("%d of %d mappings are not listening (see iofog-connector status)", down, len(all)),
			"mappings":     len(all), "down": down,
		})
		return
	}
	s.reply(w, http.StatusOK, map[string]any{"status": "ready", "mappings": len(all)})
}

// listening reports whether st's endpoints are open: it was reopened (or
// added) without error and, for a public mapping, its public port listens.
func listening(st *core.MappingStatus) bool {
	if st.Down() != "" || st.Side1.Error != "" || st.Side2.Error != "" {
		return false
	}
	return st.Type != core.TypePublic || st.Side2.Active
}
