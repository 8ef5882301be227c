package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net/http"
	"path"
	"strconv"
	"strings"
)

// realm is named in the WWW-Authenticate challenge of a 401.
const realm = `Bearer realm="iofog-connector"`

// guard runs the checks every request passes before routing, in this
// order: authentication (token, client certificate), a clean path (the
// mux would answer an unclean one with an empty redirect), and the
// cross-origin check (a browser on the connector's host must not be able
// to drive the API from another site's page). Each refusal is a JSON error.
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := s.authenticate(r); err != nil {
			if s.tokenSum.Load() != nil {
				challenge := realm
				if r.Header.Get("Authorization") != "" {
					challenge += `, error="invalid_token"`
				}
				w.Header().Set("WWW-Authenticate", challenge)
			}
			s.fail(w, r, err)
			return
		}
		if p := r.URL.Path; p == "" || p[0] != '/' || path.Clean(p) != p {
			s.fail(w, r, fmt.Errorf("%w: path %s is not in canonical form (every call is a POST to /api/v2/...)", errNoRoute, clip(strconv.Quote(p))))
			return
		}
		if err := s.cop.Check(r); err != nil {
			s.fail(w, r, fmt.Errorf("%w: %v", errCrossOrigin, err))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// authenticate checks the client certificate and the bearer token, when
// they are required. It fails closed: anything unexpected is a refusal.
func (s *Server) authenticate(r *http.Request) error {
	// The probes' two read-only routes reveal counts only and need no
	// credentials: a probe cannot easily carry a token (see health.go).
	if (r.Method == http.MethodGet || r.Method == http.MethodHead) &&
		(r.URL.Path == HealthzPath || r.URL.Path == ReadyzPath) {
		return nil
	}
	if s.cfg.RequireClientCert && (r.TLS == nil || len(r.TLS.VerifiedChains) == 0) {
		return fmt.Errorf("%w: a client certificate signed by the API's client CA is required", errUnauthorized)
	}
	want := s.tokenSum.Load() // one token for the whole check, even while SetToken runs
	if want == nil {
		return nil
	}
	vals := r.Header.Values("Authorization")
	if len(vals) == 0 {
		return fmt.Errorf("%w: send the API token as \"Authorization: Bearer TOKEN\"", errUnauthorized)
	}
	scheme, token, ok := strings.Cut(vals[0], " ")
	if len(vals) != 1 || !ok || !strings.EqualFold(scheme, "Bearer") {
		return fmt.Errorf("%w: the Authorization header must be one \"Bearer TOKEN\"", errUnauthorized)
	}
	// Comparing digests keeps the time independent of where the tokens
	// differ and of the token's length.
	got := sha256.Sum256([]byte(strings.TrimSpace(token)))
	if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
		return fmt.Errorf("%w: the bearer token is not valid", errUnauthorized)
	}
	return nil
}

// SetToken replaces the API token, as [Config.Token] describes it: from
// the next request on, only the new token is accepted; "" turns the token
// check off. Requests being checked concurrently see either the old or the
// new token, never a mix. It is safe for concurrent use.
func (s *Server) SetToken(token string) {
	if token == "" {
		s.tokenSum.Store(nil)
		return
	}
	sum := sha256.Sum256([]byte(token))
	s.tokenSum.Store(&sum)
}
