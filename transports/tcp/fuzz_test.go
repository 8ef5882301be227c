package tcp

import (
	"bytes"
	"errors"
	"io"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/iofog/iofog-connector/sdk"
)

// Seeds beyond testdata/fuzz: hellos of both versions and roles, and the
// ways they go wrong.
func FuzzReadHello(f *testing.F) {
	var inst instanceID
	copy(inst[:], "0123456789abcdef")
	for _, v := range []byte{protocolV1, protocolV2, protocolV3, protocolV4} {
		for _, role := range []byte{rolePool, roleOpen, roleControl} {
			h, _ := appendHello(nil, v, role, "passcode", inst)
			f.Add(h[1:], "passcode")
		}
	}
	h, _ := appendHello(nil, protocolV2, rolePool, "passcode", inst)
	f.Add(h[1:len(h)-3], "passcode")                             // instance cut short
	f.Add([]byte("ICN\x05P\x00\x01x"), "x")                      // a version from the future
	f.Add([]byte("ICN\x02P\xff\xff"), "x")                       // passcode too long
	f.Add([]byte("ICX\x01P\x00\x01x"), "x")                      // bad magic
	f.Add(append([]byte("ICN\x01P\x00\x05wrong"), 'H'), "right") // wrong passcode
	f.Fuzz(func(t *testing.T, data []byte, want string) {
		if len(want) > maxPasscode {
			return
		}
		r := bytes.NewReader(data)
		h, err := readHello(r, want)
		if used := len(data) - r.Len(); used > maxHello-1 {
			t.Fatalf("readHello consumed %d bytes, more than a hello (%d)", used, maxHello-1)
		}
		if err != nil {
			return
		}
		switch h.answer {
		case answerOK:
			// Accepted only with the exact passcode, in a known version
			// and role.
			if len(data) < helloHeader-1 || !bytes.Equal(data[helloHeader-1:helloHeader-1+len(want)], []byte(want)) {
				t.Fatalf("hello %q accepted for passcode %q", data, want)
			}
			if h.version < protocolV1 || h.version > protocolNewest {
				t.Fatalf("version %d accepted", h.version)
			}
			if h.version == protocolV1 && h.role == roleControl {
				t.Fatal("a control role accepted in version 1")
			}
			// What the connector answers, the agent reads back.
			ans := appendAnswer(nil, h, 1500*time.Millisecond)
			th, err := readAnswer(bytes.NewReader(ans), h.version)
			if err != nil {
				t.Fatalf("own answer %x unreadable: %v", ans, err)
			}
			if h.version >= protocolV2 && th != 1500*time.Millisecond {
				t.Fatalf("threshold read back as %v", th)
			}
		case answerBadPasscode, answerIncompatible:
		default:
			t.Fatalf("answer %d", h.answer)
		}
	})
}

func FuzzReadAnswer(f *testing.F) {
	f.Add([]byte{answerOK}, protocolV1)
	f.Add([]byte{answerOK, 0, 0, 0x13, 0x88}, protocolV2)
	f.Add([]byte{answerOK, 0, 0, 0, 0}, protocolV2)
	f.Add([]byte{answerOK, 0, 0}, protocolV2)
	f.Add([]byte{answerBadPasscode}, protocolV2)
	f.Add([]byte{answerLinkLimit}, protocolV1)
	f.Add([]byte{answerIncompatible}, protocolV2)
	f.Add([]byte{7}, protocolV2)
	f.Add([]byte{}, protocolV2)
	f.Fuzz(func(t *testing.T, data []byte, version byte) {
		r := bytes.NewReader(data)
		th, err := readAnswer(r, version)
		if used := len(data) - r.Len(); used > 5 {
			t.Fatalf("readAnswer consumed %d bytes", used)
		}
		if err != nil {
			if th != 0 {
				t.Fatalf("threshold %v with error %v", th, err)
			}
			if len(data) > 0 && data[0] == answerBadPasscode && !errors.Is(err, sdk.ErrBadPasscode) {
				t.Fatalf("answer 1 gave %v", err)
			}
			return
		}
		if data[0] != answerOK {
			t.Fatalf("answer %d taken as acceptance", data[0])
		}
		if version >= protocolV2 && th <= 0 {
			t.Fatalf("version 2 acceptance with threshold %v", th)
		}
		if version < protocolV2 && th != 0 {
			t.Fatalf("version 1 acceptance with threshold %v", th)
		}
	})
}

func FuzzLegacyHandshake(f *testing.F) {
	f.Add([]byte("3f1c8d0e-legacy"), "3f1c8d0e-legacy")
	f.Add([]byte("3f1c8d0e-legacyBEAT"), "3f1c8d0e-legacy")
	f.Add([]byte("3f1c8d0e-legac"), "3f1c8d0e-legacy")
	f.Add([]byte("wrong-passcode!"), "3f1c8d0e-legacy")
	f.Add([]byte("x"), "x")
	f.Add([]byte{}, "x")
	f.Fuzz(func(t *testing.T, data []byte, want string) {
		if len(data) == 0 || len(want) == 0 || len(want) > maxPasscode {
			return
		}
		// The connector reads the first helloHeader bytes at once when
		// the passcode is at least that long, else one.
		k := 1
		if len(want) >= helloHeader && len(data) >= helloHeader {
			k = helloHeader
		}
		r := bytes.NewReader(data[k:])
		ok, err := readLegacyPasscode(r, data[:k], want)
		used := len(data) - k - r.Len()
		if used > len(want)-k {
			t.Fatalf("read %d bytes past the first %d for a %d-byte passcode", used, k, len(want))
		}
		full := len(data) >= len(want)
		if !full {
			if err == nil || ok {
				t.Fatalf("%d bytes of a %d-byte passcode: ok=%v err=%v", len(data), len(want), ok, err)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if ok != (string(data[:len(want)]) == want) {
			t.Fatalf("passcode %q vs %q: ok=%v", data[:len(want)], want, ok)
		}
	})
}

func FuzzIsBeats(f *testing.F) {
	for _, s := range []string{"BEAT", "BEATBEAT", "BEATBEATBEAT", "BEA", "BEATB", "beat", "xBEAT", "BEATxxxx", ""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		want := len(b) > 0 && len(b)%4 == 0 && string(b) == strings.Repeat(legacyBeat, len(b)/4)
		if got := isBeats(b); got != want {
			t.Fatalf("isBeats(%q) = %v, want %v", b, got, want)
		}
	})
}

// TestHelloRoundTrip: what appendHello writes, readHello reads back, for
// both versions, and a version the connector does not know is answered
// incompatible before the passcode is read.
func TestHelloRoundTrip(t *testing.T) {
	var inst instanceID
	copy(inst[:], "instance-0123456")
	for _, v := range []byte{protocolV1, protocolV2, protocolV3, protocolV4} {
		for _, role := range []byte{rolePool, roleOpen, roleControl} {
			b, err := appendHello(nil, v, role, "pc", inst)
			if err != nil {
				t.Fatal(err)
			}
			if b[0] != magicByte || b[4] != v || b[5] != role {
				t.Fatalf("hello %x", b)
			}
			h, err := readHello(bytes.NewReader(b[1:]), "pc")
			if err != nil {
				t.Fatal(err)
			}
			wantAnswer := answerOK
			if v == protocolV1 && role == roleControl {
				wantAnswer = answerIncompatible
			}
			if h.answer != wantAnswer || h.role != role || h.version != v {
				t.Errorf("v%d role %c: read back %+v", v, role, h)
			}
			if v >= protocolV2 && h.instance != inst {
				t.Errorf("v2: instance read back as %x", h.instance)
			}
			ans := appendAnswer(nil, h, 5*time.Second)
			if wantLen := map[bool]int{true: 5, false: 1}[v >= protocolV2 && h.answer == answerOK]; len(ans) != wantLen {
				t.Errorf("v%d role %c: answer %x, want %d bytes", v, role, ans, wantLen)
			}
		}
	}
	// Version 2 with an accepted hello: exactly 0x00 then 5000 big endian.
	h := hello{version: protocolV2, answer: answerOK}
	if got := appendAnswer(nil, h, 5*time.Second); !bytes.Equal(got, []byte{0, 0, 0, 0x13, 0x88}) {
		t.Errorf("v2 answer %x, want 00 00001388", got)
	}
	r := bytes.NewReader([]byte("ICN\x09P\x00\x20more bytes that must stay unread"))
	h, err := readHello(r, "pc")
	if err != nil || h.answer != answerIncompatible {
		t.Fatalf("version 9: %+v %v", h, err)
	}
	if rest, _ := io.ReadAll(r); string(rest) != "more bytes that must stay unread" {
		t.Errorf("version 9: the connector read past the header: %q left", rest)
	}
}

// TestSessionTimings: the beat interval fits well inside the threshold
// the connector told, whatever the agent was configured with.
func TestSessionTimings(t *testing.T) {
	for _, tc := range []struct {
		name                 string
		cfgInterval, cfgTh   time.Duration
		learned              time.Duration
		wantInterval, wantTh time.Duration
	}{
		{"v1 defaults", 0, 0, 0, 5 * time.Second, 60 * time.Second},
		{"v1 configured", time.Second, 3 * time.Second, 0, time.Second, 3 * time.Second},
		{"v2 5000ms", 0, 0, 5 * time.Second, 1250 * time.Millisecond, 5 * time.Second},
		{"v2 1000ms", 0, 0, time.Second, 250 * time.Millisecond, time.Second},
		{"v2 tiny threshold: floor", 0, 0, 400 * time.Millisecond, 250 * time.Millisecond, 400 * time.Millisecond},
		{"v2 200000ms", 0, 0, 200 * time.Second, 50 * time.Second, 200 * time.Second},
		{"v2 configured interval too slow", 5 * time.Second, 0, 5 * time.Second, 1250 * time.Millisecond, 5 * time.Second},
		{"v2 configured interval fits", 400 * time.Millisecond, 2 * time.Second, 2 * time.Second, 400 * time.Millisecond, 2 * time.Second},
		{"v2 own threshold shorter", 0, 2 * time.Second, 20 * time.Second, 500 * time.Millisecond, 2 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &session{cfg: sdk.DialConfig{HeartbeatInterval: tc.cfgInterval, HeartbeatThreshold: tc.cfgTh}}
			s.learned.Store(int64(tc.learned))
			iv, th := s.timings()
			if iv != tc.wantInterval || th != tc.wantTh {
				t.Errorf("timings() = %v, %v; want %v, %v", iv, th, tc.wantInterval, tc.wantTh)
			}
		})
	}
}

// FuzzReadBindOrigin feeds arbitrary bytes to the agent's reader of a
// version 3 bind frame (after its 'B'): it must not panic, must read at
// most 1+sdk.MaxOriginLen bytes, must return only valid origins, and must
// read back exactly what appendBind writes.
func FuzzReadBindOrigin(f *testing.F) {
	o := sdk.Origin{Client: netip.MustParseAddrPort("127.0.0.2:40000"), Local: netip.MustParseAddrPort("[::1]:7001"), Proxy: sdk.ProxyV1}
	f.Add(appendBind(nil, protocolV3, o, true)[1:])
	f.Add(appendBind(nil, protocolV3, o, false)[1:])
	f.Add([]byte{41})
	f.Add([]byte{3, 1, 1, 4})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		got, ok, err := readBindOrigin(r)
		if used := len(data) - r.Len(); used > 1+sdk.MaxOriginLen {
			t.Fatalf("read %d bytes", used)
		}
		if err != nil || !ok {
			if ok {
				t.Fatal("ok with an error")
			}
			return
		}
		if err := got.Validate(); err != nil {
			t.Fatalf("accepted an invalid origin %+v: %v", got, err)
		}
		again := appendBind(nil, protocolV3, got, true)
		back, ok, err := readBindOrigin(bytes.NewReader(again[1:]))
		if err != nil || !ok || back != got {
			t.Fatalf("round trip %+v -> %x -> %+v %v %v", got, again, back, ok, err)
		}
	})
}

// TestBindFrames: older links get a bare bind; version 3 links get the
// origin or a zero length.
func TestBindFrames(t *testing.T) {
	o := sdk.Origin{Client: netip.MustParseAddrPort("10.0.0.1:1"), Local: netip.MustParseAddrPort("10.0.0.2:2"), Proxy: sdk.ProxyV2}
	if b := appendBind(nil, protocolV2, o, true); string(b) != "B" {
		t.Errorf("version 2 bind %x", b)
	}
	if b := appendBind(nil, protocolV3, o, false); string(b) != "B\x00" {
		t.Errorf("version 3 bind without origin %x", b)
	}
	b := appendBind(nil, protocolV3, o, true)
	if b[0] != 'B' || int(b[1]) != len(b)-2 {
		t.Fatalf("version 3 bind %x", b)
	}
	for _, bad := range [][]byte{{sdk.MaxOriginLen + 1}, {2, 9, 9}, {byte(len(b) - 2)}} {
		if _, _, err := readBindOrigin(bytes.NewReader(bad)); err == nil {
			t.Errorf("readBindOrigin(%x) accepted", bad)
		}
	}
}
