package muxkit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/iofog/iofog-connector/sdk"
	"github.com/iofog/iofog-connector/sdk/admission"
)

// HandshakeConn is what [Endpoint.Admit] runs the passcode handshake on:
// the agent's connection, or the stream that carries its hello.
type HandshakeConn interface {
	io.ReadWriter
	SetDeadline(t time.Time) error
}

// AdmitConfig configures one [Endpoint.Admit].
type AdmitConfig struct {
	// Handshake is the transport's handshake (its name and protocol
	// error).
	Handshake Handshake
	// Passcode is the mapping's passcode the hello must carry.
	Passcode string
	// Terms are sent to agents of hello version 2 and later.
	Terms Terms
	// Timeout bounds the whole handshake; zero means 10 seconds.
	Timeout time.Duration
	// Logger receives a DEBUG line per refused or failed agent; nil
	// discards.
	Logger *slog.Logger
}

// Admit is the connector's half of the passcode handshake, the same for
// every multiplexing transport: it reads the agent's hello from conn,
// checks the passcode, takes a link place ([Endpoint.Reserve]) for a good
// one and writes the answer (with cfg.Terms from version 2 on), all within
// cfg.Timeout and ending early when the endpoint closes. It sets conn's
// deadline and clears it on success.
//
// A nil error means the agent is admitted and a place is reserved: the
// transport starts its multiplexer over the connection and calls
// [Endpoint.AddHello] with the hello (or [Endpoint.Unreserve] if it gives
// up). Otherwise answer is what the agent was told ([AnswerOK] when no
// refusal was sent) and the failure has been counted ([Endpoint.Failed])
// and logged, except when the endpoint is closing, where the error wraps
// [sdk.ErrClosed]; a refusal's error wraps [sdk.ErrBadPasscode],
// [sdk.ErrLinkLimit] or [sdk.ErrIncompatible]. The transport then closes
// the connection in its own way.
func (ep *Endpoint) Admit(conn HandshakeConn, addr net.Addr, cfg AdmitConfig) (Hello, Answer, error) {
	log := sdk.Logger(cfg.Logger)
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	conn.SetDeadline(time.Now().Add(timeout))
	stop := context.AfterFunc(ep.ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	answer, hello, err := cfg.Handshake.ReadHello(conn, cfg.Passcode)
	if err != nil {
		stop()
		if ep.ctx.Err() != nil {
			return hello, AnswerOK, fmt.Errorf("%s: admitting an agent: %w", ep.name, sdk.ErrClosed)
		}
		log.Debug("agent handshake failed", "err", err)
		ep.Failed(addr, admission.Reason(err))
		return hello, AnswerOK, fmt.Errorf("%s: reading the agent's hello: %w", ep.name, err)
	}
	reserved := false
	if answer == AnswerOK {
		switch err := ep.Reserve(); {
		case errors.Is(err, sdk.ErrLinkLimit):
			answer = AnswerLinkLimit
		case err != nil:
			stop()
			return hello, AnswerOK, fmt.Errorf("%s: admitting an agent: %w", ep.name, err)
		default:
			reserved = true
		}
	}
	err = hello.WriteAnswer(conn, answer, cfg.Terms)
	if !stop() && err == nil {
		err = sdk.ErrClosed // the endpoint closed: its deadline may land any time
	}
	if err != nil || answer != AnswerOK {
		if reserved {
			ep.Unreserve()
		}
		log.Debug("agent refused or gone", "answer", answer, "err", err)
		ep.Failed(addr, Refusal(answer, err))
		if err == nil {
			err = refusalErr(answer)
		}
		return hello, answer, fmt.Errorf("%s: agent not admitted: %w", ep.name, err)
	}
	conn.SetDeadline(time.Time{})
	return hello, AnswerOK, nil
}

// refusalErr is the sdk error of a refusal answer.
func refusalErr(a Answer) error {
	switch a {
	case AnswerBadPasscode:
		return sdk.ErrBadPasscode
	case AnswerLinkLimit:
		return sdk.ErrLinkLimit
	case AnswerIncompatible:
		return sdk.ErrIncompatible
	}
	return fmt.Errorf("answer %d", a)
}
