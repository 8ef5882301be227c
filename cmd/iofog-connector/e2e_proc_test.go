package main

// Helpers shared by the e2e tests for what they run beside the daemon:
// processes started by hand (agents, helper processes), the local
// services agents reach, the agent's command line, and the watchdog.

import (
	"fmt"
	"io"
	"net"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/iofog/iofog-connector/sdk/transporttest"
)

// e2eWatchdog panics a test that runs over d, so a hang shows the stacks
// of every goroutine.
func e2eWatchdog(t testing.TB, d time.Duration) {
	t.Helper()
	timer := time.AfterFunc(d, func() { panic(t.Name() + ": watchdog: ran over " + d.String()) })
	t.Cleanup(func() { timer.Stop() })
}

// e2eAgentArgs is the start of our agent's command line: `agent MODE`
// toward connector with passcode, then extra. Each file's own builder
// adds what its agents need (--plaintext against a dev-mode daemon, --ca,
// --local...).
func e2eAgentArgs(mode, connector, passcode string, extra ...string) []string {
	return append([]string{"agent", mode, "--connector", connector, "--passcode", passcode}, extra...)
}

// e2eProc is a process a test started, with its output captured. At
// cleanup, if it still runs, it gets SIGTERM and, 10 s later, SIGKILL, by
// its PID; its output is logged if the test failed.
type e2eProc struct {
	cmd  *exec.Cmd
	out  *e2eBuffer
	done chan struct{}
	err  error // cmd.Wait's, once done is closed
}

// e2eStart starts bin with args.
func e2eStart(t testing.TB, bin string, args ...string) *e2eProc {
	t.Helper()
	return e2eStartCmd(t, exec.Command(bin, args...))
}

// e2eStartCmd starts cmd (its Env, SysProcAttr... set by the caller).
func e2eStartCmd(t testing.TB, cmd *exec.Cmd) *e2eProc {
	t.Helper()
	p := &e2eProc{cmd: cmd, out: &e2eBuffer{}, done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %v: %v", cmd.Args, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		if p.alive() {
			p.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-p.done:
			case <-time.After(10 * time.Second):
				p.cmd.Process.Kill()
				<-p.done
			}
		}
		if t.Failed() {
			t.Logf("output of %v:\n%s", cmd.Args, p.out.String())
		}
	})
	return p
}

// alive reports whether the process still runs.
func (p *e2eProc) alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// signal sends sig to the process.
func (p *e2eProc) signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v to pid %d: %v", sig, p.cmd.Process.Pid, err)
	}
}

// kill9 kills the process with SIGKILL and waits for it.
func (p *e2eProc) kill9(t testing.TB) {
	t.Helper()
	p.signal(t, syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Fatalf("pid %d survived SIGKILL", p.cmd.Process.Pid)
	}
}

// kill sends SIGKILL if the process still runs and waits up to 10 s for
// it, failing nothing.
func (p *e2eProc) kill() {
	if p.alive() {
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
	}
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
	}
}

// stop sends SIGTERM and requires a clean exit within 15 s.
func (p *e2eProc) stop(t testing.TB) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		t.Fatalf("pid %d still running 15 s after SIGTERM", p.cmd.Process.Pid)
	}
	if p.err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", p.err, p.out.String())
	}
}

// waitLine waits up to d for a line of output containing substr and
// returns it.
func (p *e2eProc) waitLine(substr string, d time.Duration) (string, error) {
	deadline := time.Now().Add(d)
	for {
		for _, l := range strings.Split(p.out.String(), "\n") {
			if strings.Contains(l, substr) {
				return l, nil
			}
		}
		if !p.alive() {
			return "", fmt.Errorf("exited before printing %q:\n%s", substr, p.out.String())
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("no %q within %v:\n%s", substr, d, p.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// e2eEcho serves a local echo service (the agent's "local service"): it
// copies every byte back and half-closes when the client does.
func e2eEcho(t testing.TB) string {
	t.Helper()
	return transporttest.Serve(t, func(c net.Conn) {
		io.Copy(c, c)
		c.(*net.TCPConn).CloseWrite()
	})
}
