package yamux

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"testing"
	"time"

	hyamux "github.com/hashicorp/yamux"
)

// refFrame is a frame as a straightforward parse of a whole stream sees
// it: where it ends, and whether it wakes its stream's reader.
type refFrame struct {
	end   int
	id    uint32
	wakes bool
}

// refParse parses a whole byte stream: its complete frames, and the
// offset of the first byte yamux would reject (-1: none).
func refParse(b []byte) (fs []refFrame, bad int) {
	i := 0
	for {
		rest := b[i:]
		if len(rest) > 0 && rest[0] != 0 {
			return fs, i
		}
		if len(rest) > 1 && rest[1] > 3 {
			return fs, i + 1
		}
		if len(rest) < 12 {
			return fs, -1
		}
		typ, flags := rest[1], binary.BigEndian.Uint16(rest[2:])
		id, length := binary.BigEndian.Uint32(rest[4:]), binary.BigEndian.Uint32(rest[8:])
		end := i + 12
		if typ == 0 {
			end += int(length)
		}
		if end > len(b) {
			return fs, -1
		}
		wakes := typ <= 1 && (flags&0xc != 0 || typ == 0 && length > 0)
		fs = append(fs, refFrame{end: end, id: id, wakes: wakes})
		i = end
	}
}

// FuzzFrames feeds a byte stream to the frame tracker in chunks cut
// anywhere and checks, chunk by chunk, the frames it completes and notes
// and where it stops against refParse of the whole stream.
func FuzzFrames(f *testing.F) {
	f.Add(append(frameHdr(0, 0, 1, 3), "abc"...), []byte{1})
	f.Add(append(append(frameHdr(1, 4, 3, 0), frameHdr(0, 0, 5, 2)...), "xy"...), []byte{5, 7, 1})
	f.Add(append(frameHdr(2, 1, 0, 9), frameHdr(3, 0, 0, 0)...), []byte{12})
	f.Add(append(frameHdr(0, 0, 1, 1), 'z', 1, 0), []byte{3, 3, 3})
	f.Add(append(frameHdr(1, 8, 7, 0), 0, 9), []byte{13})
	f.Fuzz(func(t *testing.T, stream, cuts []byte) {
		ref, bad := refParse(stream)
		fr := newFrames()
		off, r, k := 0, 0, 0
		for off < len(stream) {
			size := 1 + len(stream)
			if len(cuts) > 0 {
				size = 1 + int(cuts[k%len(cuts)])
				k++
			}
			chunk := stream[off:min(len(stream), off+size)]
			n, err := fr.scan(chunk)
			end := off + n
			if bad >= off && bad < off+len(chunk) {
				if err == nil || end != bad {
					t.Fatalf("chunk at %d: scan = %d, %v; want %d, errFrame (bad byte at %d)", off, n, err, bad-off, bad)
				}
			} else if err != nil || n != len(chunk) {
				t.Fatalf("chunk at %d: scan = %d, %v; want %d, nil", off, n, err, len(chunk))
			}
			var want []uint32
			completed := 0
			for ; r < len(ref) && ref[r].end <= end; r++ {
				completed++
				if ref[r].wakes && (len(want) == 0 || want[len(want)-1] != ref[r].id) {
					want = append(want, ref[r].id)
				}
			}
			if fr.all {
				if len(want) <= maxNoted {
					t.Fatalf("chunk at %d: note overflow with %d frames to note", off, len(want))
				}
			} else if !slicesEqual(fr.noted, want) {
				t.Fatalf("chunk at %d: noted %v, want %v", off, fr.noted, want)
			}
			if cap(fr.noted) != maxNoted {
				t.Fatalf("noted grew to %d", cap(fr.noted))
			}
			fr.noted, fr.all = fr.noted[:0], false
			if fr.total != uint64(r) {
				t.Fatalf("after %d bytes: %d frames completed, want %d", end, fr.total, r)
			}
			if err != nil {
				if _, err := fr.scan([]byte{0}); err == nil {
					t.Fatal("scan after a malformed header succeeded")
				}
				return
			}
			off = end
		}
		if bad >= 0 {
			t.Fatalf("bad byte at %d not reported", bad)
		}
	})
}

func slicesEqual(a, b []uint32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestFramesNoAllocs: following frames, split anywhere, allocates nothing.
func TestFramesNoAllocs(t *testing.T) {
	var in []byte
	for i := range 300 {
		in = append(in, frameHdr(0, 0, uint32(i%7), 5)...)
		in = append(in, "hello"...)
		in = append(in, frameHdr(1, 4, uint32(i), 0)...)
	}
	fr := newFrames()
	allocs := testing.AllocsPerRun(20, func() {
		for off := 0; off < len(in); off += 7 {
			fr.scan(in[off:min(len(in), off+7)])
			fr.noted, fr.all = fr.noted[:0], false
		}
	})
	if allocs != 0 {
		t.Fatalf("scan allocates %v times per stream", allocs)
	}
	if fr.total != 21*600 {
		t.Fatalf("%d frames completed, want %d", fr.total, 21*600)
	}
}

// rawSession is a tracked yamux server session, made as the transport
// makes one, over loopback TCP whose other end the test writes frames to
// by hand. The peer has opened stream 1, returned adapted.
func rawSession(t *testing.T) (*stream, *ymux, *net.TCPConn) {
	t.Helper()
	peer, srv := tcpPair(t)
	rt := track(coalesce(srv, srv))
	cfg := hyamux.DefaultConfig()
	cfg.EnableKeepAlive = false
	cfg.LogOutput = io.Discard
	sess, err := hyamux.Server(rt, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sess.Close() })
	go io.Copy(io.Discard, peer) // the session's ACKs and window updates
	if _, err := peer.Write(frameHdr(1, 1, 1, 0)); err != nil {
		t.Fatal(err)
	}
	type accepted struct {
		st  *hyamux.Stream
		err error
	}
	ch := make(chan accepted, 1)
	go func() {
		st, err := sess.AcceptStream()
		ch <- accepted{st, err}
	}()
	var a accepted
	select {
	case a = <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("no stream accepted")
	}
	if a.err != nil {
		t.Fatal(a.err)
	}
	m := &ymux{s: sess, rt: rt, drain: time.Second, log: slog.New(slog.DiscardHandler)}
	return newStream(a.st, m, true), m, peer
}

// arm calls NotifyRead, which must arm, and returns the channel its
// callback closes; a second call of the callback panics.
func arm(t *testing.T, s *stream) chan struct{} {
	t.Helper()
	fired := make(chan struct{})
	if !s.NotifyRead(func() { close(fired) }) {
		t.Fatal("NotifyRead did not arm on an idle stream")
	}
	return fired
}

func waitFired(t *testing.T, fired chan struct{}, what string) {
	t.Helper()
	select {
	case <-fired:
	case <-time.After(5 * time.Second):
		t.Fatalf("NotifyRead's callback did not run on %s", what)
	}
}

func notFired(t *testing.T, fired chan struct{}, what string) {
	t.Helper()
	select {
	case <-fired:
		t.Fatalf("NotifyRead's callback ran %s", what)
	case <-time.After(30 * time.Millisecond):
	}
}

// readNowStream reads what the stream holds without waiting (yamux's own
// Read under an expired deadline): what a woken reader would find.
func readNowStream(s *stream, b []byte) (int, error) {
	s.st.SetReadDeadline(expired)
	defer s.st.SetReadDeadline(time.Time{})
	return s.st.Read(b)
}

// TestNotifyReadFindsData: whenever the callback runs, the frame that
// fired it is in the stream's buffer already (the tracker fires the
// frames completed by one read at the start of the next), however the
// frame is cut into TCP writes; not before its last byte; and NotifyRead
// refuses to arm while data is buffered.
func TestNotifyReadFindsData(t *testing.T) {
	s, _, peer := rawSession(t)
	buf := make([]byte, 64<<10)
	for round := range 200 {
		body := bytes.Repeat([]byte{byte(round)}, 1+round*37%5000)
		frame := append(frameHdr(0, 0, 1, uint32(len(body))), body...)
		fired := arm(t, s)
		cut := round % len(frame)
		if round%3 == 0 {
			cut = len(frame) - 1 // all but the last byte first
		}
		if _, err := peer.Write(frame[:cut]); err != nil {
			t.Fatal(err)
		}
		if round%3 == 0 {
			notFired(t, fired, "before the frame's last byte")
		}
		if _, err := peer.Write(frame[cut:]); err != nil {
			t.Fatal(err)
		}
		waitFired(t, fired, "data")
		if s.NotifyRead(func() { t.Error("callback of a refused NotifyRead ran") }) {
			t.Fatalf("round %d: NotifyRead armed again after its callback ran for data: the data was not buffered yet", round)
		}
		got := 0
		for got < len(body) {
			n, err := readNowStream(s, buf[got:])
			if err != nil {
				t.Fatalf("round %d: data not buffered when the callback ran: %d of %d bytes, then %v", round, got, len(body), err)
			}
			got += n
		}
		if !bytes.Equal(buf[:got], body) {
			t.Fatalf("round %d: read other bytes than sent", round)
		}
	}
	// Frames of other streams, and window updates, do not fire it.
	fired := arm(t, s)
	peer.Write(append(append(frameHdr(0, 1, 3, 2), "zz"...), frameHdr(1, 0, 1, 100)...))
	notFired(t, fired, "for another stream's frame or a window update")
	s.Close()
	waitFired(t, fired, "local close")
}

// TestNotifyReadEnds: the callback runs, and Read then returns at once,
// on each way the stream can end or stop: FIN, RST, local close, session
// loss, a malformed frame, the read deadline passing or changing.
func TestNotifyReadEnds(t *testing.T) {
	check := func(t *testing.T, s *stream, fired chan struct{}, what string, want func(error) bool) {
		t.Helper()
		waitFired(t, fired, what)
		done := make(chan error, 1)
		go func() { _, err := s.Read(make([]byte, 8)); done <- err }()
		select {
		case err := <-done:
			if !want(err) {
				t.Fatalf("Read after %s: %v", what, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("Read blocked after %s woke it", what)
		}
	}
	t.Run("FIN", func(t *testing.T) {
		s, _, peer := rawSession(t)
		fired := arm(t, s)
		peer.Write(frameHdr(1, flagFIN, 1, 0))
		check(t, s, fired, "FIN", func(err error) bool { return err == io.EOF })
	})
	t.Run("DataWithFIN", func(t *testing.T) {
		s, _, peer := rawSession(t)
		fired := arm(t, s)
		peer.Write(append(frameHdr(0, flagFIN, 1, 2), "hi"...))
		waitFired(t, fired, "data with FIN")
		b := make([]byte, 8)
		if n, err := readNowStream(s, b); n != 2 || err != nil {
			t.Fatalf("read %d, %v; want the 2 bytes", n, err)
		}
		if _, err := readNowStream(s, b); err != io.EOF {
			t.Fatalf("read after the data: %v, want EOF", err)
		}
	})
	t.Run("RST", func(t *testing.T) {
		s, _, peer := rawSession(t)
		fired := arm(t, s)
		peer.Write(frameHdr(1, flagRST, 1, 0))
		check(t, s, fired, "RST", func(err error) bool { return err != nil && err != io.EOF })
	})
	t.Run("LocalClose", func(t *testing.T) {
		s, _, _ := rawSession(t)
		fired := arm(t, s)
		s.Close()
		check(t, s, fired, "Close", func(err error) bool { return errors.Is(err, net.ErrClosed) })
		if s.NotifyRead(func() { t.Error("callback of a closed stream ran") }) {
			t.Fatal("NotifyRead armed on a closed stream")
		}
	})
	t.Run("SessionLost", func(t *testing.T) {
		s, _, peer := rawSession(t)
		fired := arm(t, s)
		peer.Close()
		check(t, s, fired, "the connection closing", func(err error) bool { return errors.Is(err, ErrSessionLost) })
		if s.NotifyRead(func() { t.Error("callback on a lost session ran") }) {
			t.Fatal("NotifyRead armed on a lost session")
		}
	})
	t.Run("SessionClosed", func(t *testing.T) {
		s, m, _ := rawSession(t)
		fired := arm(t, s)
		m.s.Close()
		check(t, s, fired, "session Close", func(err error) bool { return errors.Is(err, ErrSessionLost) })
	})
	t.Run("Malformed", func(t *testing.T) {
		s, m, peer := rawSession(t)
		fired := arm(t, s)
		bad := frameHdr(0, 0, 1, 1)
		bad[0] = 1 // version 1
		peer.Write(append(append(frameHdr(0, 0, 1, 3), "abc"...), bad...))
		waitFired(t, fired, "a malformed frame")
		select {
		case <-m.s.CloseChan():
		case <-time.After(5 * time.Second):
			t.Fatal("a malformed frame did not end the session")
		}
	})
	t.Run("Deadline", func(t *testing.T) {
		s, _, _ := rawSession(t)
		s.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		fired := arm(t, s)
		check(t, s, fired, "the read deadline", func(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) })
		if s.NotifyRead(func() { t.Error("callback past the deadline ran") }) {
			t.Fatal("NotifyRead armed past the read deadline")
		}
	})
	t.Run("DeadlineChanged", func(t *testing.T) {
		s, _, _ := rawSession(t)
		fired := arm(t, s)
		s.SetReadDeadline(time.Now().Add(time.Hour))
		waitFired(t, fired, "a read deadline change")
	})
}
