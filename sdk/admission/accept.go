package admission

import (
	"context"
	"errors"
	"log/slog"
	"syscall"
	"time"
)

// Default bounds of [Retry]'s delay.
const (
	// DefaultMinDelay is the first delay of a backoff episode.
	DefaultMinDelay = 5 * time.Millisecond
	// DefaultMaxDelay caps the delay; it doubles up to this.
	DefaultMaxDelay = time.Second
)

// transientErrnos are accept(2) errors that say nothing about the
// listening socket itself: the process or the system ran out of something
// (descriptors, buffers, memory) or one pending connection failed before it
// was accepted. accept(2) on Linux asks callers to retry on the network
// errors of the protocol too. osTransientErrnos adds those only some
// systems define (ENONET on Linux).
var transientErrnos = [...]syscall.Errno{
	syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM,
	syscall.ECONNABORTED, syscall.ECONNRESET, syscall.EINTR, syscall.EAGAIN,
	syscall.EPROTO, syscall.EPERM, syscall.ETIMEDOUT,
	syscall.ENETDOWN, syscall.ENOPROTOOPT, syscall.EHOSTDOWN,
	syscall.EHOSTUNREACH, syscall.EOPNOTSUPP, syscall.ENETUNREACH,
}

// Transient reports whether err, returned by an Accept, is worth retrying
// after a pause: one of the errno values above (EMFILE, ENFILE, ENOBUFS,
// ENOMEM, ECONNABORTED and the like), or an error whose Temporary method
// reports true. A closed listener (net.ErrClosed) and any other error are
// not transient.
func Transient(err error) bool {
	if err == nil {
		return false
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		for _, e := range transientErrnos {
			if errno == e {
				return true
			}
		}
		for _, e := range osTransientErrnos {
			if errno == e {
				return true
			}
		}
	}
	var tmp interface{ Temporary() bool }
	return errors.As(err, &tmp) && tmp.Temporary()
}

// Retry paces an accept loop through transient errors. Its zero value
// works (delays from [DefaultMinDelay] to [DefaultMaxDelay], logs
// discarded). A Retry belongs to one loop: it is not safe for concurrent
// use.
//
//	for {
//		c, err := ln.Accept()
//		if err != nil {
//			if closing || errors.Is(err, net.ErrClosed) {
//				return nil
//			}
//			if retry.Wait(ctx, err) {
//				continue
//			}
//			return err // stopped for good
//		}
//		retry.Reset()
//		...
//	}
type Retry struct {
	// Logger receives one WARN line when an episode of transient errors
	// starts (with its cause) and one INFO line when it ends. Nil
	// discards.
	Logger *slog.Logger
	// What names the loop in those lines, as in "accepting agent
	// connections". Empty means "accepting connections".
	What string
	// MinDelay and MaxDelay bound the delay, which doubles from MinDelay
	// up to MaxDelay within an episode. Zero means the defaults.
	MinDelay, MaxDelay time.Duration

	delay   time.Duration // 0 outside an episode
	retries int
	since   time.Time
}

func (r *Retry) what() string {
	if r.What == "" {
		return "accepting connections"
	}
	return r.What
}

func (r *Retry) log() *slog.Logger {
	if r.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return r.Logger
}

// Wait handles err from Accept. For a transient error ([Transient]) it
// waits for the next delay and returns true: the loop goes on. It returns
// false at once for any other error (the loop should stop and report err)
// and when ctx ends while it waits.
func (r *Retry) Wait(ctx context.Context, err error) bool {
	if !Transient(err) {
		return false
	}
	lo, hi := r.MinDelay, r.MaxDelay
	if lo <= 0 {
		lo = DefaultMinDelay
	}
	if hi <= 0 {
		hi = DefaultMaxDelay
	}
	if r.delay == 0 {
		r.delay, r.retries, r.since = lo, 0, time.Now()
		r.log().Warn(r.what()+" failed; retrying with backoff until it works again",
			"err", err, "first_delay", lo, "max_delay", max(lo, hi))
	} else {
		r.delay = min(2*r.delay, max(lo, hi))
	}
	r.retries++
	t := time.NewTimer(r.delay)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// Reset ends an episode after a successful Accept, logging at INFO how
// many retries it took. It costs nothing outside an episode.
func (r *Retry) Reset() {
	if r.delay == 0 {
		return
	}
	r.log().Info(r.what()+" works again", "retries", r.retries, "after", time.Since(r.since).Round(time.Millisecond))
	r.delay = 0
}

// Retrying reports whether the loop is in an episode of transient errors.
func (r *Retry) Retrying() bool { return r.delay != 0 }
