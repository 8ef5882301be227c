package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/iofog/iofog-connector/api/status"
	"github.com/iofog/iofog-connector/core"
	"github.com/iofog/iofog-connector/sdk"
)

// form parses the form-encoded body, size-limited, and returns field name.
// A missing or empty field is an error naming it.
func (s *Server) form(w http.ResponseWriter, r *http.Request, name string) (string, error) {
	r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
	if err := r.ParseForm(); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return "", fmt.Errorf("request body exceeds %d bytes: %w", s.cfg.MaxBodyBytes, mbe)
		}
		return "", fmt.Errorf("%w: malformed form body: %v", ErrBadRequest, err)
	}
	if n := len(r.PostForm[name]); n > 1 {
		return "", fmt.Errorf("%w: form field %q is given %d times", ErrBadRequest, name, n)
	}
	v := strings.TrimSpace(r.PostForm.Get(name))
	if v == "" {
		return "", fmt.Errorf("%w: form field %q is missing", ErrBadRequest, name)
	}
	return v, nil
}

func (s *Server) now() int64 { return s.cfg.Now().UnixMilli() }

func (s *Server) reply(w http.ResponseWriter, code int, body map[string]any) {
	body["timestamp"] = s.now()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(body)
}

func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	code := errorStatus(err)
	msg := err.Error()
	if code == http.StatusInsufficientStorage {
		msg = "No enough available ports: " + msg
	}
	switch {
	case code == http.StatusInsufficientStorage || code == http.StatusServiceUnavailable:
		s.log.Warn("api request refused", "path", r.URL.Path, "status", code, "err", err)
	case code >= 500:
		s.log.Error("api request failed", "path", r.URL.Path, "status", code, "err", err)
	default:
		s.log.Debug("api request refused", "path", r.URL.Path, "status", code, "err", err)
	}
	s.reply(w, code, map[string]any{"status": "error", "errormessage": msg})
}

func (s *Server) add(w http.ResponseWriter, r *http.Request) {
	raw, err := s.form(w, r, "mapping")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	req, err := parseMapping(raw)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	m, err := s.cfg.Core.Add(r.Context(), req)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if short := min(nonZero(m.Heartbeat1), nonZero(m.Heartbeat2)); short < core.LegacyAgentBeat {
		s.log.Warn("mapping heartbeat threshold is shorter than the legacy agents' beat; their links will drop",
			sdk.AttrMappingID, m.ID, "threshold_ms", short.Milliseconds(), "legacy_beat_ms", core.LegacyAgentBeat.Milliseconds())
	}
	s.reply(w, http.StatusOK, map[string]any{
		"status": "ok", "id": m.ID, "port1": m.Port1, "port2": m.Port2,
		"passcode1": m.Passcode1, "passcode2": m.Passcode2, "transport": m.Transport,
		"proxyprotocol": m.ProxyProtocol,
	})
}

func (s *Server) remove(w http.ResponseWriter, r *http.Request) {
	id, err := s.form(w, r, "mappingid")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.cfg.Core.Remove(r.Context(), id); err != nil {
		s.fail(w, r, err)
		return
	}
	s.reply(w, http.StatusOK, map[string]any{"status": "ok", "id": id})
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	id, err := s.form(w, r, "mappingid")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if id == "all" {
		sum := status.SummaryOf(s.cfg.Version, s.cfg.Core.Summary(), s.cfg.Now())
		s.reply(w, http.StatusOK, map[string]any{
			"status": "running", "id": "all", "mappings": sum.Mappings, "version": sum.Version,
			"availablePorts": sum.FreePorts, "agentLinks": sum.AgentLinks,
			"publicConnections": sum.PublicConnections, "uptime": sum.Uptime.String(),
		})
		return
	}
	st, err := s.cfg.Core.Status(id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	m := status.MappingOf(st)
	body := map[string]any{
		"status": "ok", "id": m.ID, "type": m.Type, "transport": m.Transport,
		"port1": m.Port1, "port2": m.Port2,
		"links": m.Links, "idleLinks": m.IdleLinks(),
		"connections": m.Connections, "totalConnections": m.ConnectionsTotal, "refusedConnections": m.Refused,
		"bytesUp": m.BytesUp, "bytesDown": m.BytesDown,
		"idletimeout": m.IdleTimeoutMs, "proxyprotocol": m.ProxyProtocol,
	}
	// The legacy names of the two sockets' states.
	if m.Type == core.TypePublic {
		body["private"], body["public"] = status.ActiveText(m.Side1.Active), status.ActiveText(m.Side2.Active)
	} else {
		body["private1"], body["private2"] = status.ActiveText(m.Side1.Active), status.ActiveText(m.Side2.Active)
	}
	body["failedHandshakes"] = m.FailedHandshakes
	if e := m.Fault(); e != "" {
		body["error"] = e
	}
	s.reply(w, http.StatusOK, body)
}

// nonZero returns d, or the largest duration for zero (the transport's
// default threshold, which suits every agent).
func nonZero(d time.Duration) time.Duration {
	if d == 0 {
		return math.MaxInt64
	}
	return d
}

const helpText = `Commands for /api/v2/commandline (form field "command"):
  status   summary of the connector
  version  version of the connector
  help     this text
  stop     stop the connector (only from the local host)`

func (s *Server) commandline(w http.ResponseWriter, r *http.Request) {
	cmd, err := s.form(w, r, "command")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var text string
	switch strings.ToLower(cmd) {
	case "status":
		if s.cfg.Status != nil {
			text = s.cfg.Status().Text()
		} else {
			sum := s.cfg.Core.Summary()
			text = fmt.Sprintf("running; %d mappings; %d available ports", sum.Mappings, sum.FreePorts)
		}
	case "version":
		text = s.cfg.Version
	case "help":
		text = helpText
	case "stop":
		if !fromLoopback(r) {
			s.fail(w, r, fmt.Errorf("%w: command stop from %s", errForbidden, r.RemoteAddr))
			return
		}
		if s.cfg.Stop == nil {
			s.fail(w, r, fmt.Errorf("%w: command stop is disabled", errForbidden))
			return
		}
		s.log.Info("stop requested over the API", "peer", r.RemoteAddr)
		text = "stopping"
		// The handler answers first; the daemon's shutdown waits for it.
		defer func() { go s.cfg.Stop() }()
	default:
		s.fail(w, r, fmt.Errorf("%w: command %q is unknown (status, version, help, stop)", ErrBadRequest, cmd))
		return
	}
	s.reply(w, http.StatusOK, map[string]any{"response": text})
}

// fromLoopback reports whether r came from the local host.
func fromLoopback(r *http.Request) bool {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	return err == nil && ap.Addr().Unmap().IsLoopback()
}
