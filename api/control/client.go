package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/iofog/iofog-connector/api/status"
	"github.com/iofog/iofog-connector/core"
)

// ErrNotRunning is wrapped by the [Client]'s errors when no daemon answers.
var ErrNotRunning = errors.New("iofog-connector is not running")

// AnswerError is an answer of the control socket with an error status.
type AnswerError struct {
	// Status is the HTTP status code.
	Status int
	// Message is the daemon's error message.
	Message string
}

func (e *AnswerError) Error() string { return e.Message }

// maxAnswerBytes bounds an answer the client reads: a status of many
// thousand mappings fits.
const maxAnswerBytes = 64 << 20

// Client is the CLI's side of the control socket of one data dir. It is
// safe for concurrent use.
type Client struct {
	dataDir string
	// start is the command line that starts a daemon on this data dir,
	// for the error when none runs.
	start string
	http  *http.Client
}

// NewClient returns a client of the daemon whose data dir is dataDir.
// start is the command that would start it (for error messages); empty
// means "iofog-connector start".
func NewClient(dataDir, start string) *Client {
	path := Path(dataDir)
	if start == "" {
		start = "iofog-connector start"
	}
	return &Client{dataDir: dataDir, start: start, http: &http.Client{
		Timeout: 90 * time.Second,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return new(net.Dialer).DialContext(ctx, "unix", path)
			},
			DisableKeepAlives: true,
		},
	}}
}

// Status returns the daemon's status.
func (c *Client) Status(ctx context.Context) (status.Daemon, error) {
	var d status.Daemon
	return d, c.Call(ctx, http.MethodGet, "/status", nil, &d)
}

// Stop asks the daemon to stop and waits up to timeout for its socket to
// go away.
func (c *Client) Stop(ctx context.Context, timeout time.Duration) error {
	if err := c.Call(ctx, http.MethodPost, "/stop", nil, nil); err != nil {
		return err
	}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		conn, err := net.DialTimeout("unix", Path(c.dataDir), time.Second)
		if err != nil {
			return nil
		}
		conn.Close()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("iofog-connector did not stop within %s", timeout)
}

// Reload asks the daemon to reload its settings. When they do not load
// the error is an [*AnswerError] saying why, and nothing changed.
func (c *Client) Reload(ctx context.Context) (ReloadResult, error) {
	var res ReloadResult
	return res, c.Call(ctx, http.MethodPost, "/reload", nil, &res)
}

// Mappings lists the mappings, without passcodes.
func (c *Client) Mappings(ctx context.Context) ([]status.Mapping, error) {
	var l MappingList
	if err := c.Call(ctx, http.MethodGet, "/mappings", nil, &l); err != nil {
		return nil, err
	}
	if l.Mappings == nil {
		l.Mappings = []status.Mapping{}
	}
	return l.Mappings, nil
}

// Mapping returns mapping id with its passcodes. An unknown id is an
// [*AnswerError] of status 404.
func (c *Client) Mapping(ctx context.Context, id string) (status.Mapping, error) {
	var m status.Mapping
	return m, c.Call(ctx, http.MethodGet, "/mapping?id="+url.QueryEscape(id), nil, &m)
}

// Add adds a mapping and returns it with its passcodes.
func (c *Client) Add(ctx context.Context, req core.AddRequest) (status.Mapping, error) {
	var m status.Mapping
	return m, c.Call(ctx, http.MethodPost, "/mapping", req, &m)
}

// Remove removes mapping id. An unknown id is an [*AnswerError] of status
// 404.
func (c *Client) Remove(ctx context.Context, id string) error {
	return c.Call(ctx, http.MethodDelete, "/mapping?id="+url.QueryEscape(id), nil, nil)
}

// Call sends a request for route path (with its query) with in (when not
// nil) as its JSON body, and decodes a 2xx JSON answer into out (when not
// nil). An error answer is an [*AnswerError]; no answer at all wraps
// [ErrNotRunning]. The other methods are Calls of their routes.
func (c *Client) Call(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("control socket: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://control"+path, body)
	if err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return c.dialError(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	if err != nil {
		return fmt.Errorf("control socket: reading the answer: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		var e errorBody
		if json.Unmarshal(b, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(b))
		}
		return &AnswerError{Status: resp.StatusCode, Message: e.Error}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("control socket: bad answer: %w", err)
	}
	return nil
}

// dialError explains a failed request: no daemon, or a socket this user
// may not use.
func (c *Client) dialError(err error) error {
	path := Path(c.dataDir)
	switch {
	case errors.Is(err, os.ErrPermission):
		return fmt.Errorf("control socket %s: permission denied: run this command as the daemon's user (or with sudo)", path)
	case errors.Is(err, syscall.ENOENT), errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ENOTSOCK):
		return fmt.Errorf("%w with data dir %s (nothing answers on %s): start it with: %s", ErrNotRunning, c.dataDir, path, c.start)
	}
	return fmt.Errorf("%w with data dir %s? no answer on %s: %v", ErrNotRunning, c.dataDir, path, err)
}
