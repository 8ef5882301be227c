package plugin

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/iofog/iofog-connector/sdk/plugin/internal/pb"
)

// fakeWatch is a plugin's end of Watch as the host sees it: events are
// fed by the test, and Recv fails with end once it is closed.
type fakeWatch struct {
	grpc.ClientStream
	events chan *pb.StreamEvent
	end    error
	beats  chan struct{}
}

func (f *fakeWatch) Send(*pb.HostBeat) error {
	select {
	case f.beats <- struct{}{}:
	default:
	}
	return nil
}

func (f *fakeWatch) Recv() (*pb.StreamEvent, error) {
	ev, ok := <-f.events
	if !ok {
		return nil, f.end
	}
	return ev, nil
}

// watchClient is a TransportClient whose Watch is w, or Unimplemented
// when w is nil.
type watchClient struct {
	pb.TransportClient
	w *fakeWatch
}

func (c watchClient) Watch(context.Context, ...grpc.CallOption) (grpc.BidiStreamingClient[pb.HostBeat, pb.StreamEvent], error) {
	if c.w == nil {
		return nil, status.Error(codes.Unimplemented, "unknown method Watch")
	}
	return c.w, nil
}

func unixPair(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	dir := t.TempDir()
	ln, err := net.Listen("unix", dir+"/s")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	a, err := net.Dial("unix", dir+"/s")
	if err != nil {
		t.Fatal(err)
	}
	b, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// TestWatcher: an aborted stream's connection is closed by the host (its
// reader sees net.ErrClosed, not EOF), also when the abort comes before
// the claim completes; the beats start at once; when the plugin is gone
// every stream is closed; with a plugin of an earlier release nothing is
// tracked or closed.
func TestWatcher(t *testing.T) {
	fw := &fakeWatch{events: make(chan *pb.StreamEvent), end: io.EOF, beats: make(chan struct{}, 1)}
	w := newWatcher()
	done := make(chan struct{})
	go func() { w.run(watchClient{w: fw}); close(done) }()
	select {
	case <-fw.beats:
	case <-time.After(hostBeatInterval / 2):
		t.Error("no beat as soon as the stream opened")
	}

	var t1, t2, t3 ticket
	t1[0], t2[0], t3[0] = 1, 2, 3
	c1, _ := unixPair(t)
	w.expect(t1)
	if !w.claimed(t1, c1) {
		t.Fatal("claimed refused a stream nobody aborted")
	}
	fw.events <- &pb.StreamEvent{Ticket: t1[:], Aborted: true}
	fw.events <- &pb.StreamEvent{Ticket: []byte("short"), Aborted: true} // ignored
	c1.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c1.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("reading an aborted stream: %v, want net.ErrClosed", err)
	}

	w.expect(t2)
	fw.events <- &pb.StreamEvent{Ticket: t2[:], Aborted: true}
	c2, _ := unixPair(t)
	time.Sleep(50 * time.Millisecond)
	if w.claimed(t2, c2) {
		t.Error("claimed accepted a stream aborted before its claim completed")
	}

	c3, _ := unixPair(t)
	w.expect(t3)
	w.claimed(t3, c3)
	close(fw.events) // the plugin is gone
	<-done
	c3.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c3.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("reading a stream of a plugin that is gone: %v, want net.ErrClosed", err)
	}

	old := newWatcher()
	old.run(watchClient{}) // Unimplemented: returns at once
	c4, _ := unixPair(t)
	var t4 ticket
	old.expect(t4)
	if !old.claimed(t4, c4) || len(old.streams) != 0 {
		t.Errorf("a watcher of a plugin without Watch tracks streams")
	}
	c4.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if _, err := c4.Read(make([]byte, 1)); errors.Is(err, net.ErrClosed) {
		t.Errorf("a watcher of a plugin without Watch closed a stream")
	}
}

// TestWatcherPrunes: streams the relay closed are forgotten as the table
// grows, so it stays bounded by the streams open.
func TestWatcherPrunes(t *testing.T) {
	w := newWatcher()
	for i := range 3 * minPrune {
		var tk ticket
		tk[0], tk[1] = byte(i), byte(i>>8)
		c, _ := unixPair(t)
		w.expect(tk)
		w.claimed(tk, c)
		c.Close()
	}
	if n := len(w.streams); n > 2*minPrune {
		t.Errorf("%d closed streams tracked, want them pruned", n)
	}
}
