package yamux

import (
	"encoding/binary"
	"fmt"
	"io"
	"sync"

	hyamux "github.com/hashicorp/yamux"
)

// The control stream is the first stream of a session, opened by the
// connector. Its messages:
//
//	go-away   1                          connector → agent, every version:
//	                                     it takes no more streams
//	abort     2 | stream id (uint32 BE)  either way, hello version 4 on: the
//	                                     sender closed that stream before
//	                                     reading its end; stop writing to it
//
// yamux has no stream reset a user can send, so without the abort a peer
// keeps writing into a stream the other side closed, and that side discards
// it all (for up to DrainTimeout) on the session's one connection.
const (
	ctrlGoAway byte = 1
	ctrlAbort  byte = 2
)

// readCtrl reads one control message: its kind, and for an abort the
// stream id. It reads at most 5 bytes; an unknown kind is ErrProtocol.
func readCtrl(r io.Reader) (kind byte, id uint32, err error) {
	var b [5]byte
	if _, err := io.ReadFull(r, b[:1]); err != nil {
		return 0, 0, err
	}
	switch b[0] {
	case ctrlGoAway:
		return ctrlGoAway, 0, nil
	case ctrlAbort:
		if _, err := io.ReadFull(r, b[1:]); err != nil {
			return 0, 0, fmt.Errorf("%w: control stream: short abort: %w", ErrProtocol, err)
		}
		return ctrlAbort, binary.BigEndian.Uint32(b[1:]), nil
	}
	return 0, 0, fmt.Errorf("%w: control stream: unknown message %d", ErrProtocol, b[0])
}

// appendAbort appends the abort message of stream id.
func appendAbort(b []byte, id uint32) []byte {
	return binary.BigEndian.AppendUint32(append(b, ctrlAbort), id)
}

// aborts tracks a version 4 session's open streams by id, so that the
// peer's abort reaches the right one, and the aborts of streams the peer
// opened that this side has not accepted yet: yamux hands out streams in
// the order the peer opened them, so an unknown id above the last one
// accepted is still in the accept queue (one at or below it was closed
// here already).
type aborts struct {
	mu       sync.Mutex
	m        map[uint32]*stream
	early    map[uint32]struct{} // at most maxEarly
	accepted uint32              // the highest id of a peer-opened stream handed out
}

// maxEarly bounds the aborts kept for streams not yet accepted; past it
// they are dropped (those streams are drained as before version 4).
const maxEarly = 1024

// add registers s; peerOpened says the peer opened it (an accepted
// stream). It reports whether the peer aborted s already.
func (a *aborts) add(s *stream, peerOpened bool) (aborted bool) {
	id := s.st.StreamID()
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.m == nil {
		a.m = make(map[uint32]*stream)
	}
	a.m[id] = s
	if peerOpened {
		a.accepted = max(a.accepted, id)
		if _, ok := a.early[id]; ok {
			delete(a.early, id)
			return true
		}
	}
	return false
}

func (a *aborts) remove(s *stream) {
	a.mu.Lock()
	delete(a.m, s.st.StreamID())
	a.mu.Unlock()
}

// abort stops the writes of stream id if it is open here, or keeps the
// abort for when it is accepted (peerOpened: id is of a stream the peer
// opens); ids of streams already closed here are ignored (their close
// ends them anyway).
func (a *aborts) abort(id uint32, peerOpened bool) {
	a.mu.Lock()
	s := a.m[id]
	if s == nil && peerOpened && id > a.accepted && len(a.early) < maxEarly {
		if a.early == nil {
			a.early = make(map[uint32]struct{})
		}
		a.early[id] = struct{}{}
	}
	a.mu.Unlock()
	if s != nil {
		s.abort()
	}
}

// sendAbort tells the peer that stream id was closed here before its end:
// the peer's writes to it fail and it sends its FIN, which ends the drain
// here.
func sendAbort(ctrl *hyamux.Stream, id uint32) error {
	_, err := ctrl.Write(appendAbort(make([]byte, 0, 5), id))
	return err
}
