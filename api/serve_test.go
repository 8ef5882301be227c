package api

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestServeTimesOutSlowClientsAndShutsDown serves on a loopback socket: a
// client that never finishes its headers is disconnected, a normal client
// is answered, and cancelling ctx makes Serve return nil.
func TestServeTimesOutSlowClientsAndShutsDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := New(Config{Core: &fakeCore{}})
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln, nil) }()

	slow, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	if _, err := slow.Write([]byte("POST /api/v2/status HTTP/1.1\r\nHost: x\r\n")); err != nil {
		t.Fatal(err)
	}
	slow.SetReadDeadline(time.Now().Add(20 * time.Second))
	start := time.Now()
	b, _ := io.ReadAll(slow) // returns when the server closes the connection
	if time.Since(start) > 15*time.Second {
		t.Fatalf("slow client kept for %s", time.Since(start))
	}
	if strings.Contains(string(b), "200 OK") {
		t.Fatalf("half-sent request was answered: %q", b)
	}

	resp, err := http.PostForm("http://"+ln.Addr().String()+"/api/v2/status", url.Values{"mappingid": {"all"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status: %d", resp.StatusCode)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve after cancel: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
}
