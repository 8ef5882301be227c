package api

import (
	"errors"
	"net/http"

	"github.com/iofog/iofog-connector/core"
)

// ErrBadRequest is wrapped by the request parsers for a missing or
// malformed field; the message names the field.
var ErrBadRequest = errors.New("api: bad request")

// errorStatus maps an error to its HTTP status.
func errorStatus(err error) int {
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, ErrBadRequest), errors.Is(err, core.ErrInvalid), errors.Is(err, core.ErrUnknownTransport):
		return http.StatusBadRequest
	case errors.Is(err, errUnauthorized):
		return http.StatusUnauthorized
	case errors.Is(err, errForbidden), errors.Is(err, errCrossOrigin):
		return http.StatusForbidden
	case errors.Is(err, errMethod):
		return http.StatusMethodNotAllowed
	case errors.Is(err, core.ErrNotFound), errors.Is(err, errNoRoute):
		return http.StatusNotFound
	case errors.Is(err, core.ErrDuplicate):
		return http.StatusConflict
	case errors.Is(err, core.ErrNoFreePort):
		return http.StatusInsufficientStorage
	case errors.Is(err, core.ErrClosed):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

var (
	errForbidden    = errors.New("api: only allowed from the local host")
	errNoRoute      = errors.New("api: no such endpoint")
	errUnauthorized = errors.New("api: authentication required")
	errCrossOrigin  = errors.New("api: cross-origin browser request refused")
	errMethod       = errors.New("api: method not allowed")
)
