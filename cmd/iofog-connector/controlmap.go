package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/iofog/iofog-connector/core"
	"github.com/iofog/iofog-connector/sdk"
)

// The mapping routes of the control socket. They call the same
// core.Manager methods as the REST API, so a mapping added or removed here
// is stored (and journalled) exactly as one the Controller adds or removes.
//
//	GET    /mappings        {"mappings":[mappingView without passcodes]}
//	GET    /mapping?id=ID   mappingView with passcodes
//	POST   /mapping         core.AddRequest as JSON -> mappingView with passcodes
//	DELETE /mapping?id=ID   {"id":ID,"removed":true}
//
// Errors are {"error":"..."} with 400 (invalid request), 404 (unknown id),
// 409 (duplicate id), 503 (shutting down), 507 (no free ports) or 500.

// mappingView is one mapping as `mapping ls --json`, `mapping show --json`
// and `mapping add --json` print it. Its field names are stable; fields
// are only ever added.
type mappingView struct {
	ID        string `json:"id"`
	Type      string `json:"type"` // public or private
	Transport string `json:"transport"`
	Port1     int    `json:"port1"` // agent port
	Port2     int    `json:"port2"` // public port (public) or second agent port (private)
	// Passcode1 and Passcode2 are only in show and add answers.
	Passcode1 string `json:"passcode1,omitempty"`
	Passcode2 string `json:"passcode2,omitempty"`

	MaxConnections1       int   `json:"maxConnections1"`
	MaxConnections2       int   `json:"maxConnections2"`
	HeartbeatThresholdMs1 int64 `json:"heartbeatThresholdMs1"`
	HeartbeatThresholdMs2 int64 `json:"heartbeatThresholdMs2"`
	IdleTimeoutMs         int64 `json:"idleTimeoutMs"`
	// ProxyProtocol is "v1" or "v2" when agents write a PROXY protocol
	// header to the local service of a public mapping.
	ProxyProtocol string `json:"proxyProtocol,omitempty"`

	// State is "ok", "waiting" (an agent port has no link yet), "error"
	// (a port stopped accepting and is being listened again) or "down"
	// (not reopened at start); Problem says why when it is not "ok".
	State   string `json:"state"`
	Problem string `json:"problem,omitempty"`

	Links            int   `json:"links"`            // agent links, both ports
	Connections      int64 `json:"connections"`      // relayed connections open now
	ConnectionsTotal int64 `json:"connectionsTotal"` // relayed since start
	BytesUp          int64 `json:"bytesUp"`          // public client (or side 1) toward the agent (or side 2)
	BytesDown        int64 `json:"bytesDown"`        // the other way
	Refused          int64 `json:"refused"`          // public clients refused
	FailedHandshakes int64 `json:"failedHandshakes"` // agent connections that did not become links

	Side1 sideView `json:"side1"`
	Side2 sideView `json:"side2"`
}

// sideView is one port of a mapping.
type sideView struct {
	Port             int    `json:"port"`
	Active           bool   `json:"active"`
	Links            int    `json:"links"`
	IdleLinks        int    `json:"idleLinks"`
	Streams          int    `json:"streams"`
	FailedHandshakes int64  `json:"failedHandshakes"`
	Error            string `json:"error,omitempty"`
	Restarts         int    `json:"restarts"`
}

// mappingList is the answer of GET /mappings and `mapping ls --json`.
type mappingList struct {
	Mappings []mappingView `json:"mappings"`
}

// viewOf renders st; passcodes only when withSecrets.
func viewOf(st core.MappingStatus, withSecrets bool) mappingView {
	v := mappingView{
		ID: st.ID, Type: st.Type, Transport: st.Transport, Port1: st.Port1, Port2: st.Port2,
		MaxConnections1: st.MaxConns1, MaxConnections2: st.MaxConns2,
		HeartbeatThresholdMs1: st.Heartbeat1.Milliseconds(), HeartbeatThresholdMs2: st.Heartbeat2.Milliseconds(),
		IdleTimeoutMs: st.IdleTimeout.Milliseconds(), ProxyProtocol: st.ProxyProtocol,
		Links: st.Side1.Links + st.Side2.Links, Connections: st.Active, ConnectionsTotal: st.Total,
		BytesUp: st.BytesUp, BytesDown: st.BytesDown, Refused: st.Refused,
		FailedHandshakes: st.Side1.Failed + st.Side2.Failed,
		Side1:            sideViewOf(st.Side1), Side2: sideViewOf(st.Side2),
	}
	if withSecrets {
		v.Passcode1, v.Passcode2 = st.Passcode1, st.Passcode2
	}
	v.State, v.Problem = mappingState(st)
	return v
}

func sideViewOf(s core.SideStatus) sideView {
	return sideView{Port: s.Port, Active: s.Active, Links: s.Links, IdleLinks: s.IdleLinks, Streams: s.Streams,
		FailedHandshakes: s.Failed, Error: s.Error, Restarts: s.Restarts}
}

// mappingState names the state of st and what is wrong.
func mappingState(st core.MappingStatus) (state, problem string) {
	switch {
	case st.Down() != "":
		return "down", st.Down()
	case st.Problem() != "":
		return "error", st.Problem()
	case !st.Side1.Active && st.Type == core.TypePrivate && !st.Side2.Active:
		return "waiting", fmt.Sprintf("no agent linked on port1 (%d) nor port2 (%d)", st.Port1, st.Port2)
	case !st.Side1.Active:
		return "waiting", fmt.Sprintf("no agent linked on port1 (%d)", st.Port1)
	case st.Type == core.TypePrivate && !st.Side2.Active:
		return "waiting", fmt.Sprintf("no agent linked on port2 (%d)", st.Port2)
	}
	return "ok", ""
}

// routeMappings adds the mapping routes to mux.
func routeMappings(mux *http.ServeMux, d *daemon, log *slog.Logger) {
	mux.HandleFunc("GET /mappings", func(w http.ResponseWriter, r *http.Request) {
		out := mappingList{Mappings: []mappingView{}}
		for _, st := range d.mgr.List() {
			out.Mappings = append(out.Mappings, viewOf(st, false))
		}
		controlJSON(w, http.StatusOK, out)
	})
	mux.HandleFunc("GET /mapping", func(w http.ResponseWriter, r *http.Request) {
		st, err := d.mgr.Status(r.URL.Query().Get("id"))
		if err != nil {
			controlFail(w, err)
			return
		}
		controlJSON(w, http.StatusOK, viewOf(st, true))
	})
	mux.HandleFunc("POST /mapping", func(w http.ResponseWriter, r *http.Request) {
		var req core.AddRequest
		dec := json.NewDecoder(r.Body)
		dec.DisallowUnknownFields() // a field this daemon does not know must not be dropped silently
		if err := dec.Decode(&req); err != nil {
			controlFail(w, fmt.Errorf("%w: the request is not a mapping this daemon understands (is the CLI newer than the daemon?): %w", core.ErrInvalid, err))
			return
		}
		mp, err := d.mgr.Add(r.Context(), req)
		if err != nil {
			controlFail(w, err)
			return
		}
		log.Debug("mapping added on the control socket", sdk.AttrMappingID, mp.ID)
		st, err := d.mgr.Status(mp.ID)
		if err != nil { // removed at once by someone else
			st = core.MappingStatus{Mapping: mp}
		}
		controlJSON(w, http.StatusOK, viewOf(st, true))
	})
	mux.HandleFunc("DELETE /mapping", func(w http.ResponseWriter, r *http.Request) {
		id := r.URL.Query().Get("id")
		if err := d.mgr.Remove(r.Context(), id); err != nil {
			controlFail(w, err)
			return
		}
		log.Debug("mapping removed on the control socket", sdk.AttrMappingID, id)
		controlJSON(w, http.StatusOK, map[string]any{"id": id, "removed": true})
	})
}

// controlFail answers err with the status its kind maps to.
func controlFail(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, core.ErrInvalid), errors.Is(err, core.ErrUnknownTransport):
		code = http.StatusBadRequest
	case errors.Is(err, core.ErrNotFound):
		code = http.StatusNotFound
	case errors.Is(err, core.ErrDuplicate):
		code = http.StatusConflict
	case errors.Is(err, core.ErrNoFreePort):
		code = http.StatusInsufficientStorage
	case errors.Is(err, core.ErrClosed):
		code = http.StatusServiceUnavailable
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		code = http.StatusRequestEntityTooLarge
	}
	controlJSON(w, code, controlErrorBody{Error: err.Error()})
}
