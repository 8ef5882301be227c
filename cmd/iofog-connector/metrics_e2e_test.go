package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// metricsE2EScrape is one parsed scrape of /metrics.
type metricsE2EScrape map[string]*dto.MetricFamily

// metricsE2EGet scrapes url and parses the text exposition.
func metricsE2EGet(url string) (metricsE2EScrape, error) {
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("GET %s: parsing the exposition: %w", url, err)
	}
	return mfs, nil
}

// value returns the value of the series of name whose labels include
// labels (a counter, gauge, or a histogram's sample count), and whether
// there is one.
func (s metricsE2EScrape) value(name string, labels ...string) (float64, bool) {
	mf := s[name]
	if mf == nil {
		return 0, false
	}
next:
	for _, m := range mf.GetMetric() {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, l := range m.GetLabel() {
				found = found || (l.GetName() == labels[i] && l.GetValue() == labels[i+1])
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount()), true
		}
	}
	return 0, false
}

// v is value with absent read as 0 (a counter that never moved has no
// series).
func (s metricsE2EScrape) v(name string, labels ...string) float64 {
	x, _ := s.value(name, labels...)
	return x
}

// metricsE2EWait scrapes url until ok accepts a scrape, for up to 20 s,
// and returns that scrape; it fails the test with the last one otherwise.
func metricsE2EWait(t *testing.T, url, what string, ok func(metricsE2EScrape) error) metricsE2EScrape {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		s, err := metricsE2EGet(url)
		if err == nil {
			if err = ok(s); err == nil {
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 20s: %v", what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// metricsE2ELegacyDial sends passcode as a legacy agent does and reads
// what comes back until the connector closes.
func metricsE2ELegacyDial(addr, passcode string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(15 * time.Second))
	if _, err := c.Write([]byte(passcode)); err != nil {
		return "", err
	}
	b, err := io.ReadAll(c)
	return string(b), err
}

// TestMetricsE2EPublicRelay runs the real daemon with metrics-address, a
// public mapping, our agent and a loopback echo service, and checks on
// /metrics, parsed as Prometheus parses it: a wrong passcode counts one
// bad_passcode handshake failure; a client refused for lack of an agent
// counts one no_agent_in_time refusal; 256 KiB each way through the public
// port move the byte counters by exactly that, during the live relay and
// after; connections active 1 then 0, total +1; links, mapping and port
// gauges; the store's fsyncs; and /metrics is not served on the API port.
func TestMetricsE2EPublicRelay(t *testing.T) {
	e2eWatchdog(t, 3*time.Minute)
	metricsAddr := "127.0.0.1:" + strconv.Itoa(e2eFreePort(t))
	d := e2eStartDaemon(t, e2eOptions{Ports: 10, Settings: map[string]any{
		"metrics-address":     metricsAddr,
		"public-wait-timeout": "500ms",
	}})
	url := "http://" + metricsAddr + "/metrics"
	if !strings.Contains(d.Logs.String(), "metrics="+url) {
		t.Fatalf("the start-up line does not say metrics=%s:\n%s", url, d.Logs.String())
	}

	// Not on the API port.
	resp, err := d.Client.Get(d.API + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if resp.StatusCode == 200 || bytes.Contains(body, []byte("iofog_connector_")) {
		t.Fatalf("the API port serves metrics: %d %.200s", resp.StatusCode, body)
	}

	s0, err := metricsE2EGet(url)
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := s0.value("iofog_connector_build_info", "goversion", runtime.Version()); !ok || v != 1 {
		t.Errorf("iofog_connector_build_info{goversion=%q} = %v (present %v), want 1", runtime.Version(), v, ok)
	}
	if got := s0.v("iofog_connector_ports_free"); got != 10 {
		t.Errorf("ports_free before any mapping = %v, want 10", got)
	}

	m := d.AddMapping(t, e2ePublicBody)
	id := m.ID
	s1, err := metricsE2EGet(url)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"iofog_connector_mappings", []string{"type", "public", "transport", "tcp"}, 1},
		{"iofog_connector_mappings", []string{"type", "private", "transport", "tcp"}, 0},
		{"iofog_connector_mapping_info", []string{"mapping_id", id, "type", "public", "transport", "tcp", "port1", strconv.Itoa(m.Port1), "port2", strconv.Itoa(m.Port2)}, 1},
		{"iofog_connector_ports_used", nil, 2},
		{"iofog_connector_ports_free", nil, 8},
		{"iofog_connector_agent_links", []string{"mapping_id", id, "side", "1"}, 0},
		{"iofog_connector_relayed_connections_total", []string{"mapping_id", id}, 0},
		{"iofog_connector_relayed_bytes_total", []string{"mapping_id", id, "direction", "up"}, 0},
		{"iofog_connector_public_clients_waiting", []string{"mapping_id", id}, 0},
	} {
		if got, ok := s1.value(c.name, c.labels...); !ok || got != c.want {
			t.Errorf("after add: %s%v = %v (present %v), want %v", c.name, c.labels, got, ok, c.want)
		}
	}
	if n := s1.v("iofog_connector_store_sync_duration_seconds"); n < 1 {
		t.Errorf("store fsyncs observed after an add: %v, want >= 1", n)
	}

	// A public client with no agent is refused once the wait ends.
	c, err := net.Dial("tcp", d.Addr(m.Port2))
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(15 * time.Second))
	io.Copy(io.Discard, c)
	c.Close()
	metricsE2EWait(t, url, "refusal counted", func(s metricsE2EScrape) error {
		if got := s.v("iofog_connector_public_clients_refused_total", "mapping_id", id, "reason", "no_agent_in_time"); got != 1 {
			return fmt.Errorf("refused no_agent_in_time = %v, want 1", got)
		}
		return nil
	})

	// A wrong passcode is one bad_passcode failure.
	if got, err := metricsE2ELegacyDial(d.Addr(m.Port1), "not-"+m.Passcode1); strings.Contains(got, "AUTHORIZED") {
		t.Fatalf("a wrong passcode was authorized (%q, %v)", got, err)
	}
	metricsE2EWait(t, url, "wrong passcode counted", func(s metricsE2EScrape) error {
		if got := s.v("iofog_connector_agent_handshake_failures_total", "mapping_id", id, "side", "1", "reason", "bad_passcode"); got != 1 {
			return fmt.Errorf("bad_passcode failures = %v, want 1", got)
		}
		return nil
	})

	echo := e2eEcho(t)
	agent := e2eStart(t, d.Bin, e2eAgentArgs("public", d.Addr(m.Port1), m.Passcode1, "--local", echo, "--pool", "2", "--plaintext")...)
	metricsE2EWait(t, url, "agent links", func(s metricsE2EScrape) error {
		if !agent.alive() {
			return errors.New("the agent exited")
		}
		if got := s.v("iofog_connector_agent_links", "mapping_id", id, "side", "1"); got < 1 {
			return fmt.Errorf("agent_links = %v, want >= 1", got)
		}
		return nil
	})

	// 256 KiB up through the echo and back down, the client held open.
	const size = 256 << 10
	payload := make([]byte, size)
	rand.Read(payload)
	pc, err := net.Dial("tcp", d.Addr(m.Port2))
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	pc.SetDeadline(time.Now().Add(60 * time.Second))
	werr := make(chan error, 1)
	go func() {
		_, err := pc.Write(payload)
		werr <- err
	}()
	got := make([]byte, size)
	if _, err := io.ReadFull(bufio.NewReader(pc), got); err != nil {
		t.Fatalf("reading the echo: %v", err)
	}
	if err := <-werr; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, payload) {
		t.Fatal("the echo differs from what was sent")
	}
	live := metricsE2EWait(t, url, "live relay", func(s metricsE2EScrape) error {
		up := s.v("iofog_connector_relayed_bytes_total", "mapping_id", id, "direction", "up")
		down := s.v("iofog_connector_relayed_bytes_total", "mapping_id", id, "direction", "down")
		if up != size || down != size {
			return fmt.Errorf("bytes up %v down %v, want %d each", up, down, size)
		}
		return nil
	})
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"iofog_connector_relayed_connections_active", []string{"mapping_id", id}, 1},
		{"iofog_connector_relayed_connections_total", []string{"mapping_id", id}, 1},
		{"iofog_connector_public_clients_waiting", []string{"mapping_id", id}, 0},
		{"iofog_connector_public_clients_refused_total", []string{"mapping_id", id, "reason", "no_agent_in_time"}, 1},
	} {
		if got, ok := live.value(c.name, c.labels...); !ok || got != c.want {
			t.Errorf("live relay: %s%v = %v (present %v), want %v", c.name, c.labels, got, ok, c.want)
		}
	}

	pc.Close()
	after := metricsE2EWait(t, url, "relay ended", func(s metricsE2EScrape) error {
		if got := s.v("iofog_connector_relayed_connections_active", "mapping_id", id); got != 0 {
			return fmt.Errorf("active = %v, want 0", got)
		}
		return nil
	})
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"iofog_connector_relayed_connections_total", []string{"mapping_id", id}, 1},
		{"iofog_connector_relayed_bytes_total", []string{"mapping_id", id, "direction", "up"}, size},
		{"iofog_connector_relayed_bytes_total", []string{"mapping_id", id, "direction", "down"}, size},
		{"iofog_connector_agent_handshake_failures_total", []string{"mapping_id", id, "side", "1", "reason", "bad_passcode"}, 1},
		{"iofog_connector_mappings", []string{"type", "public", "transport", "tcp"}, 1},
	} {
		if got, ok := after.value(c.name, c.labels...); !ok || got != c.want {
			t.Errorf("after the relay: %s%v = %v (present %v), want %v", c.name, c.labels, got, ok, c.want)
		}
	}
	if got := after.v("iofog_connector_agent_links", "mapping_id", id, "side", "1"); got < 1 {
		t.Errorf("after the relay: agent_links = %v, want >= 1", got)
	}

	// Removing the mapping removes its series and frees its ports.
	d.RemoveMapping(t, id)
	gone, err := metricsE2EGet(url)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := gone.value("iofog_connector_mapping_info", "mapping_id", id); ok {
		t.Error("a removed mapping still has series")
	}
	if got := gone.v("iofog_connector_ports_free"); got != 10 {
		t.Errorf("ports_free after remove = %v, want 10", got)
	}

	agent.stop(t)
	d.Stop(t)
	if cc, err := net.DialTimeout("tcp", metricsAddr, time.Second); err == nil {
		cc.Close()
		t.Error("the metrics port still accepts after the daemon stopped")
	}
}

// TestMetricsE2EOffByDefault: with a settings file that does not name
// metrics-address the daemon serves no metrics: its start-up line says
// metrics=off, and the only TCP port it listens on is its API's.
func TestMetricsE2EOffByDefault(t *testing.T) {
	e2eWatchdog(t, time.Minute)
	d := e2eStartDaemon(t, e2eOptions{Ports: 4})
	if !strings.Contains(d.Logs.String(), "metrics=off") {
		t.Fatalf("the start-up line does not say metrics=off:\n%s", d.Logs.String())
	}
	ports, err := metricsE2EListening(d.PID())
	if err != nil {
		t.Skipf("cannot read the daemon's sockets: %v", err)
	}
	_, api, _ := net.SplitHostPort(d.APIAddr)
	if len(ports) != 1 || strconv.Itoa(ports[0]) != api {
		t.Fatalf("the daemon listens on TCP ports %v; want only the API's %s", ports, api)
	}
	d.Stop(t)
}

// TestMetricsE2EBadAddress: a metrics-address that cannot be listened is
// an error at start, naming the setting.
func TestMetricsE2EBadAddress(t *testing.T) {
	e2eWatchdog(t, time.Minute)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dir := t.TempDir()
	conf := filepath.Join(dir, "iofog-connector.conf")
	lo, hi := e2ePortRange(t, 4)
	body := fmt.Sprintf(`{"ports":["%d-%d"],"dev":true,"bind":"127.0.0.1","api-address":"127.0.0.1:%d","metrics-address":%q}`,
		lo, hi, e2eFreePort(t), ln.Addr().String())
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	out, code := e2eRun(t, nil, "start", "--config", conf, "--data-dir", filepath.Join(dir, "data"))
	if code == 0 || !strings.Contains(out, "metrics-address") {
		t.Fatalf("start with a taken metrics-address: exit %d\n%s", code, out)
	}
	// And a value that is not HOST:PORT.
	out, code = e2eRun(t, []string{"IOFOG_CONNECTOR_METRICS_ADDRESS=9478"}, "start", "--config", conf, "--data-dir", filepath.Join(dir, "data"))
	if code == 0 || !strings.Contains(out, "metrics-address") || !strings.Contains(out, "not HOST:PORT") {
		t.Fatalf("start with metrics-address 9478: exit %d\n%s", code, out)
	}
}

// metricsE2EListening returns the TCP ports process pid listens on, from
// /proc (Linux).
func metricsE2EListening(pid int) ([]int, error) {
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return nil, err
	}
	inodes := map[string]bool{}
	for _, fd := range fds {
		l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if err == nil && strings.HasPrefix(l, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
		}
	}
	var ports []int
	for _, f := range []string{"tcp", "tcp6"} {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, f))
		if err != nil {
			if f == "tcp6" {
				continue
			}
			return nil, err
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			fs := strings.Fields(line)
			if len(fs) < 10 || fs[3] != "0A" || !inodes[fs[9]] { // 0A: LISTEN
				continue
			}
			i := strings.LastIndexByte(fs[1], ':')
			p, err := strconv.ParseUint(fs[1][i+1:], 16, 16)
			if err != nil {
				return nil, err
			}
			ports = append(ports, int(p))
		}
	}
	return ports, nil
}

// TestMetricsE2EMuxFailureReasons: on a yamux mapping (a muxkit
// transport) our agent with a wrong passcode is counted as bad_passcode,
// and a connection that sends bytes that are not the handshake as one
// failure of a known reason (never "unknown").
func TestMetricsE2EMuxFailureReasons(t *testing.T) {
	e2eWatchdog(t, 2*time.Minute)
	metricsAddr := "127.0.0.1:" + strconv.Itoa(e2eFreePort(t))
	d := e2eStartDaemon(t, e2eOptions{Ports: 4, Settings: map[string]any{"metrics-address": metricsAddr}})
	url := "http://" + metricsAddr + "/metrics"
	m := d.AddMapping(t, `{"type":"public","maxconnections":4,"heartbeatabsencethreshold":200000,"transport":"yamux"}`)
	failures := func(s metricsE2EScrape) (byReason map[string]float64, total float64) {
		byReason = map[string]float64{}
		for _, mm := range s["iofog_connector_agent_handshake_failures_total"].GetMetric() {
			labels := map[string]string{}
			for _, l := range mm.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["mapping_id"] == m.ID && labels["side"] == "1" {
				byReason[labels["reason"]] += mm.GetCounter().GetValue()
				total += mm.GetCounter().GetValue()
			}
		}
		return byReason, total
	}

	c, err := net.Dial("tcp", d.Addr(m.Port1))
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("GET / HTTP/1.0\r\nHost: x\r\n\r\n" + strings.Repeat("x", 64)))
	c.SetDeadline(time.Now().Add(30 * time.Second))
	io.Copy(io.Discard, c)
	c.Close()
	s := metricsE2EWait(t, url, "garbage counted", func(s metricsE2EScrape) error {
		if _, total := failures(s); total != 1 {
			return fmt.Errorf("failures %v, want 1", total)
		}
		return nil
	})
	if by, _ := failures(s); by["unknown"] != 0 || by["bad_passcode"] != 0 {
		t.Errorf("a connection that is not the handshake counted as %v", by)
	} else {
		t.Logf("a connection that is not the handshake counted as %v", by)
	}

	agent := e2eStart(t, d.Bin, e2eAgentArgs("public", d.Addr(m.Port1), "not-"+m.Passcode1,
		"--local", e2eEcho(t), "--transport", "yamux", "--plaintext")...)
	metricsE2EWait(t, url, "wrong passcode counted", func(s metricsE2EScrape) error {
		if by, _ := failures(s); by["bad_passcode"] < 1 {
			return fmt.Errorf("failures %v, want bad_passcode >= 1", by)
		}
		return nil
	})
	agent.stop(t)
	d.Stop(t)
}
