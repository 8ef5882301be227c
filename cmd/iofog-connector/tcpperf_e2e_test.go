package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// tcpPerfLinks counts the established TCP connections process pid holds
// to 127.0.0.1:port (its sockets' inodes, matched in /proc/net/tcp).
func tcpPerfLinks(t *testing.T, pid, port int) int {
	t.Helper()
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	inodes := map[string]bool{}
	for _, fd := range fds {
		l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if err == nil && strings.HasPrefix(l, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
		}
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/net/tcp", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want := fmt.Sprintf("0100007F:%04X", port)
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// sl local rem st tx:rx tr:when retrnsmt uid timeout inode
		fields := strings.Fields(sc.Text())
		if len(fields) > 9 && fields[2] == want && fields[3] == "01" && inodes[fields[9]] {
			n++
		}
	}
	return n
}

// TestTCPPerfPoolSharesOneControlLink: `agent public --pool 8` on tcp
// keeps 8 pool links and one control link to the connector (its workers
// share one session), not one control link per pool worker, and relays
// clients through them.
func TestTCPPerfPoolSharesOneControlLink(t *testing.T) {
	e2eWatchdog(t, 2*time.Minute)
	d := e2eStartDaemon(t, e2eOptions{Ports: 4})
	m := d.AddMapping(t, e2ePublicBody)
	echo := e2eEcho(t)
	agent := e2eStart(t, d.Bin, e2eAgentArgs("public", d.Addr(m.Port1), m.Passcode1, "--plaintext", "--local", echo, "--pool", "8")...)
	pid := agent.cmd.Process.Pid
	deadline := time.Now().Add(20 * time.Second)
	for tcpPerfLinks(t, pid, m.Port1) != 9 {
		if time.Now().After(deadline) {
			t.Fatalf("agent holds %d connections to the agent port, want 8 pool links + 1 control link", tcpPerfLinks(t, pid, m.Port1))
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Steady: no further control link comes up.
	for range 10 {
		time.Sleep(50 * time.Millisecond)
		if n := tcpPerfLinks(t, pid, m.Port1); n > 9 {
			t.Fatalf("agent holds %d connections to the agent port, want 9", n)
		}
	}
	for i := range 20 {
		c, err := net.DialTimeout("tcp", d.Addr(m.Port2), 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		msg := "client " + strconv.Itoa(i)
		if _, err := io.WriteString(c, msg); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(c, got); err != nil || string(got) != msg {
			t.Fatalf("client %d: echo %q, %v", i, got, err)
		}
		c.Close()
	}
}
