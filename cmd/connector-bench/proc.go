package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// errTimeout is returned when a child does not report ready in time.
var errTimeout = errors.New("connector-bench: timed out")

// wantNofile is the descriptor limit the harness asks for: the control
// plane run stores 10,000 mappings (two listeners each) and the hold test
// holds 9,000 connections (four descriptors each across the relay), which
// the 20,000 of a typical shell's hard limit does not fit. The Debian unit
// gives the daemon 1,048,576 (LimitNOFILE).
const wantNofile = 65536

// raiseNofile sets the soft RLIMIT_NOFILE to the hard limit, raising the
// hard limit to wantNofile first when the process may (root or
// CAP_SYS_RESOURCE; otherwise it keeps the hard limit it has). Children
// inherit it. It returns the new soft limit.
func raiseNofile() (uint64, error) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, fmt.Errorf("connector-bench: getrlimit: %w", err)
	}
	if rl.Max < wantNofile {
		up := syscall.Rlimit{Cur: wantNofile, Max: wantNofile}
		if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &up) == nil {
			return wantNofile, nil
		}
	}
	rl.Cur = rl.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, fmt.Errorf("connector-bench: setrlimit: %w", err)
	}
	return rl.Cur, nil
}

// cleanup is a stack of functions run in reverse order, once.
type cleanup struct {
	mu  sync.Mutex
	fns []func()
}

func (c *cleanup) push(f func()) {
	c.mu.Lock()
	c.fns = append(c.fns, f)
	c.mu.Unlock()
}

// run calls every pushed function, newest first, and empties the stack.
func (c *cleanup) run() {
	c.mu.Lock()
	fns := c.fns
	c.fns = nil
	c.mu.Unlock()
	for i := len(fns) - 1; i >= 0; i-- {
		fns[i]()
	}
}

// child is a process the harness started and will stop by its PID.
type child struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error // valid after done is closed
	out  *tailBuffer
	// pprof is the loopback address of the child's Go profiling
	// endpoints, "" when it serves none.
	pprof string
}

// tailBuffer keeps the last bytes written to it (a child's stderr).
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > 8192 {
		t.buf = append([]byte(nil), t.buf[len(t.buf)-8192:]...)
	}
	t.mu.Unlock()
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

// startChild starts name with args; its stderr (and stdout unless stdout is
// set) go to a tail buffer. The child is registered on cl so it is stopped
// by PID at the end whatever happens.
func startChild(cl *cleanup, log *slog.Logger, name string, stdout io.Writer, path string, args ...string) (*child, error) {
	return startChildEnv(cl, log, name, stdout, nil, path, args...)
}

// startChildEnv is startChild with the child's environment (nil: ours).
func startChildEnv(cl *cleanup, log *slog.Logger, name string, stdout io.Writer, env []string, path string, args ...string) (*child, error) {
	cmd := exec.Command(path, args...)
	cmd.Env = env
	tb := &tailBuffer{}
	cmd.Stderr = tb
	cmd.Stdout = tb
	if stdout != nil {
		cmd.Stdout = stdout
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("connector-bench: start %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, done: make(chan struct{}), out: tb}
	go func() {
		c.err = cmd.Wait()
		close(c.done)
	}()
	log.Debug("started", "child", name, "pid", cmd.Process.Pid, "args", strings.Join(args, " "))
	cl.push(func() { c.stop(log) })
	return c, nil
}

// pid returns the child's process id.
func (c *child) pid() int { return c.cmd.Process.Pid }

// alive reports whether the child has not exited.
func (c *child) alive() bool {
	select {
	case <-c.done:
		return false
	default:
		return true
	}
}

// stop sends SIGTERM to the child's PID, waits up to 5 s, then SIGKILLs it.
// It is idempotent.
func (c *child) stop(log *slog.Logger) {
	if !c.alive() {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(5 * time.Second):
		log.Warn("child ignored SIGTERM; killing", "child", c.name, "pid", c.pid())
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}

// startChildLine starts a child and waits for the first stdout line that
// begins with prefix, returning the rest of that line.
func startChildLine(ctx context.Context, cl *cleanup, log *slog.Logger, name, prefix string, path string, args ...string) (*child, string, error) {
	pr, pw := io.Pipe()
	c, err := startChild(cl, log, name, pw, path, args...)
	if err != nil {
		return nil, "", err
	}
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		sent := false
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), prefix); ok && !sent {
				lines <- strings.TrimSpace(rest)
				sent = true
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	select {
	case l := <-lines:
		return c, l, nil
	case <-c.done:
		return nil, "", fmt.Errorf("connector-bench: %s exited: %v: %s", name, c.err, c.out.String())
	case <-ctx.Done():
		return nil, "", fmt.Errorf("connector-bench: %s: %w", name, errTimeout)
	}
}

// freePort asks the kernel for a free TCP port on 127.0.0.1. Another process
// could take it before it is used; callers that can retry should.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// waitTCP waits until addr accepts TCP connections.
func waitTCP(ctx context.Context, addr string, within time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("connector-bench: %s never accepted: %w", addr, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// fileExists reports whether path names an existing file.
func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
