package yamux

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	hyamux "github.com/hashicorp/yamux"
)

// A relay (sdk/pipe) parks an idle direction without a goroutine when its
// source can say when it turns readable. yamux has no such callback, so
// the session's connection is read through a tracker that follows the
// frame boundaries in the byte stream and notes, per stream id, the
// frames that can make a stream's Read return: data frames with a body
// and frames with FIN or RST. yamux copies a frame into its stream only
// after the connection's Read returned the frame's bytes, and its reader
// (a bufio.Reader) reads the connection again only once every byte it got
// before has been consumed and handled. So the notes of frames completed
// in one Read fire at the start of the next: by then yamux has buffered
// the data or applied the flags, and a woken reader finds them. The end of
// the connection (an error, or Close) fires every waiter.

// frame header fields and flags beyond coalesce.go's.
const (
	frameGoAway = 3 // the highest frame type yamux knows
	flagFIN     = 0x4
	flagRST     = 0x8
)

// maxNoted is the most frames one Read notes one by one; past it, the
// next Read wakes every waiter (spuriously for some), which bounds the
// tracker's memory whatever a Read returns.
const maxNoted = 128

// errFrame is a frame header yamux would reject: the session ends.
var errFrame = fmt.Errorf("%s: malformed frame header", Name)

// frames follows yamux frame boundaries in a byte stream, noting the
// frames that can wake a reader. It never allocates once made.
type frames struct {
	hdr    [hdrSize]byte
	hn     int    // header bytes held in hdr
	body   uint32 // body bytes of the current data frame still to come
	id     uint32 // the current frame's stream
	wakes  bool   // the current frame wakes its stream's reader
	noted  []uint32
	all    bool   // more than maxNoted frames to note: wake everyone
	total  uint64 // frames completed
	broken bool
}

func newFrames() frames { return frames{noted: make([]uint32, 0, maxNoted)} }

// scan follows b, the next bytes of the stream. It returns len(b), or,
// at a malformed header, the number of bytes before its first bad byte
// and errFrame (and errFrame for any later call).
func (f *frames) scan(b []byte) (int, error) {
	if f.broken {
		return 0, errFrame
	}
	i := 0
	for i < len(b) {
		if f.body > 0 {
			k := uint32(min(uint64(len(b)-i), uint64(f.body)))
			f.body -= k
			i += int(k)
			if f.body == 0 {
				f.complete()
			}
			continue
		}
		if f.hn == 0 && len(b)-i >= hdrSize {
			if bad := headerFault(b[i : i+hdrSize]); bad >= 0 {
				f.broken = true
				return i + bad, errFrame
			}
			f.header(b[i : i+hdrSize])
			i += hdrSize
			continue
		}
		f.hdr[f.hn] = b[i]
		f.hn++
		if bad := headerFault(f.hdr[:f.hn]); bad >= 0 {
			f.broken = true
			return i, errFrame
		}
		i++
		if f.hn == hdrSize {
			f.hn = 0
			f.header(f.hdr[:])
		}
	}
	return i, nil
}

// headerFault returns the index of the first byte of h (a header, whole
// or its start) that yamux would reject, or -1.
func headerFault(h []byte) int {
	if len(h) > 0 && h[0] != frameVersion {
		return 0
	}
	if len(h) > 1 && h[1] > frameGoAway {
		return 1
	}
	return -1
}

// header starts the frame whose (valid, whole) header is h.
func (f *frames) header(h []byte) {
	typ := h[1]
	flags := binary.BigEndian.Uint16(h[2:4])
	f.id = binary.BigEndian.Uint32(h[4:8])
	length := binary.BigEndian.Uint32(h[8:12])
	stream := typ <= 1 // data and window update frames belong to a stream
	f.wakes = stream && (flags&(flagFIN|flagRST) != 0 || typ == frameData && length > 0)
	if typ == frameData && length > 0 {
		f.body = length
		return
	}
	f.complete()
}

// complete ends the current frame.
func (f *frames) complete() {
	f.total++
	if !f.wakes {
		return
	}
	if n := len(f.noted); n > 0 && f.noted[n-1] == f.id {
		return
	}
	if len(f.noted) == cap(f.noted) {
		f.all = true
		return
	}
	f.noted = append(f.noted, f.id)
}

// tracker is the connection a yamux session reads from, wrapped to call
// the waiters its streams register (see [stream.NotifyRead]). Only the
// session's receive loop calls Read.
type tracker struct {
	net.Conn
	f    frames
	err  error    // the error every Read returns after a malformed header
	fire []func() // reused by note

	mu      sync.Mutex
	ended   bool
	waiters map[uint32]*waiter
}

// track wraps c, the connection of a yamux session.
func track(c net.Conn) *tracker {
	return &tracker{Conn: c, f: newFrames(), waiters: make(map[uint32]*waiter)}
}

// Read implements net.Conn: it first wakes the waiters of the frames the
// previous Read completed, then reads.
func (t *tracker) Read(b []byte) (int, error) {
	t.note()
	if t.err != nil {
		t.end()
		return 0, t.err
	}
	n, err := t.Conn.Read(b)
	if k, ferr := t.f.scan(b[:n]); ferr != nil {
		// Fail closed: hand yamux only the bytes before the bad one;
		// the next Read (or this one, when there are none) ends the
		// session, as yamux itself would.
		t.err, n = ferr, k
		if n == 0 {
			err = ferr
		}
	}
	if err != nil {
		t.end()
	}
	return n, err
}

// Close implements net.Conn; it wakes every waiter.
func (t *tracker) Close() error {
	err := t.Conn.Close()
	t.end()
	return err
}

// note wakes the waiters of the frames noted so far.
func (t *tracker) note() {
	if len(t.f.noted) == 0 && !t.f.all {
		return
	}
	t.mu.Lock()
	if t.f.all {
		for id, w := range t.waiters {
			delete(t.waiters, id)
			t.fire = append(t.fire, w.fire)
		}
	} else {
		for _, id := range t.f.noted {
			if w := t.waiters[id]; w != nil {
				delete(t.waiters, id)
				t.fire = append(t.fire, w.fire)
			}
		}
	}
	t.mu.Unlock()
	t.f.noted, t.f.all = t.f.noted[:0], false
	for i, f := range t.fire {
		f()
		t.fire[i] = nil
	}
	t.fire = t.fire[:0]
}

// end marks the connection ended and wakes every waiter; later waits are
// refused.
func (t *tracker) end() {
	t.mu.Lock()
	if t.ended {
		t.mu.Unlock()
		return
	}
	t.ended = true
	ws := t.waiters
	t.waiters = nil
	t.mu.Unlock()
	for _, w := range ws {
		w.fire()
	}
}

// wait registers w for stream id; false once the connection ended.
func (t *tracker) wait(id uint32, w *waiter) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.ended {
		return false
	}
	t.waiters[id] = w
	return true
}

// take unregisters the waiter of stream id, if it is w (any waiter when w
// is nil), and returns it; nil when there is none (it fired, or was
// never registered).
func (t *tracker) take(id uint32, w *waiter) *waiter {
	t.mu.Lock()
	defer t.mu.Unlock()
	got := t.waiters[id]
	if got == nil || (w != nil && got != w) {
		return nil
	}
	delete(t.waiters, id)
	return got
}

// waiter is one call of NotifyRead's f, made at most once.
type waiter struct {
	done  atomic.Bool
	f     func()
	timer *time.Timer // the read deadline, if one was set
}

// stop stops w's timer, for a w that was never registered or was taken
// back unfired.
func (w *waiter) stop() {
	if w.timer != nil {
		w.timer.Stop()
	}
}

func (w *waiter) fire() {
	if w.done.CompareAndSwap(false, true) {
		if w.timer != nil {
			w.timer.Stop()
		}
		w.f()
	}
}

// NotifyRead arranges one call of f once Read would not block: bytes are
// there, the peer closed or reset the stream, the stream was closed here,
// the session ended, the read deadline passed or was changed. It returns
// false, and never calls f, when Read would not block now. f runs on
// yamux's receive loop or the goroutine closing the stream and must not
// block. Only one wait may be pending, and not alongside a Read. The relay
// (sdk/pipe) parks an idle direction with it, holding no goroutine.
func (s *stream) NotifyRead(f func()) (armed bool) {
	t := s.m.rt
	if t == nil { // a session made without a tracker: wait on a goroutine
		go func() {
			s.WaitRead()
			f()
		}()
		return true
	}
	if !s.rmu.TryLock() {
		return false // Close's drain took the stream over
	}
	defer s.rmu.Unlock()
	if s.CheckRead() != nil {
		return false
	}
	id := s.st.StreamID()
	w := &waiter{f: f}
	dl := s.readDeadline()
	if !dl.IsZero() {
		w.timer = time.AfterFunc(time.Until(dl), func() { s.wake(w) })
	}
	if !t.wait(id, w) {
		w.stop()
		return false
	}
	// Registered first, then checked: a frame whose note fired before the
	// registration was already handled by yamux, and the check sees it;
	// so does a deadline whose timer found nothing registered yet.
	s.st.SetReadDeadline(expired)
	_, err := s.st.Read(nil)
	s.st.SetReadDeadline(dl)
	if errors.Is(err, hyamux.ErrTimeout) && !s.IsClosed() && (dl.IsZero() || time.Now().Before(dl)) {
		// Idle: let go of the receive buffer yamux kept from the last
		// frame (it drops it only while empty; the next frame allocates
		// one to its size).
		s.st.Shrink()
		return true
	}
	// Read would not block: unless something fired w meanwhile, it never
	// runs.
	if t.take(id, w) == nil {
		return true
	}
	w.stop()
	return false
}

// wake fires the stream's pending waiter, if it is w (any when w is nil).
func (s *stream) wake(w *waiter) {
	if t := s.m.rt; t != nil {
		if w = t.take(s.st.StreamID(), w); w != nil {
			w.fire()
		}
	}
}

// expired is a deadline in the past.
var expired = time.Unix(1, 0)

// SetReadDeadline implements net.Conn; a pending NotifyRead fires, for its
// caller to look again.
func (s *stream) SetReadDeadline(t time.Time) error {
	var n int64
	if !t.IsZero() {
		n = t.UnixNano()
	}
	s.rdl.Store(n)
	err := s.StreamState.SetReadDeadline(t)
	s.wake(nil)
	return err
}

// SetDeadline implements net.Conn.
func (s *stream) SetDeadline(t time.Time) error {
	s.SetReadDeadline(t)
	return s.SetWriteDeadline(t)
}

// readDeadline is the read deadline last set.
func (s *stream) readDeadline() time.Time {
	if n := s.rdl.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}
