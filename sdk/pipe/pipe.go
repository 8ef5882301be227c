// Package pipe joins two streams and copies bytes between them in both
// directions, carrying half-close across and using the kernel's zero-copy
// splice between TCP sockets.
package pipe

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"

	"github.com/iofog/iofog-connector/sdk"
)

// Result is what [Join] moved.
type Result struct {
	// AToB is the number of bytes copied from a to b.
	AToB int64
	// BToA is the number of bytes copied from b to a.
	BToA int64
}

// Join copies a→b and b→a until both directions have ended, then closes
// both streams. When one direction reaches EOF, Join half-closes the
// destination ([sdk.CloseWriter]) so the FIN crosses the relay, and keeps
// the other direction going. A read or write error in either direction, or
// ctx being done, closes both streams at once. It returns the byte counts
// and the first error that was not io.EOF or a close it caused itself.
//
// Join blocks until both copies have returned. It owns a and b.
func Join(ctx context.Context, a, b net.Conn) (Result, error) {
	var res Result
	stop := context.AfterFunc(ctx, func() { a.Close(); b.Close() })
	defer stop()
	var (
		wg     sync.WaitGroup
		errAB  error
		errBA  error
		closer sync.Once
	)
	closeBoth := func() { closer.Do(func() { a.Close(); b.Close() }) }
	copyDir := func(dst, src net.Conn, n *int64, errp *error) {
		defer wg.Done()
		var err error
		*n, err = io.Copy(dst, src)
		if err != nil {
			*errp = err
			closeBoth()
			return
		}
		if cw, ok := dst.(sdk.CloseWriter); ok {
			if cwErr := cw.CloseWrite(); cwErr == nil {
				return
			}
		}
		closeBoth()
	}
	wg.Add(2)
	go copyDir(b, a, &res.AToB, &errAB)
	go copyDir(a, b, &res.BToA, &errBA)
	wg.Wait()
	closeBoth()
	err := errors.Join(quiet(errAB), quiet(errBA))
	if ctx.Err() != nil {
		err = nil
	}
	return res, err
}

// quiet drops the errors that a normal end of a relay produces.
func quiet(err error) error {
	if err == nil || errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}
