package muxkit

import (
	"context"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"time"

	"github.com/iofog/iofog-connector/sdk"
)

// The hello an agent sends before the multiplexer starts:
//
//	"IOFY" | version (1 byte) | passcode length (2 bytes, big endian) | passcode
//
// and the connector's answer, whose form depends on the hello's version:
//
//	version 1: answer (1 byte)
//	version 2: answer (1 byte), and after AnswerOK only:
//	           heartbeat threshold in milliseconds (4 bytes, big endian)
//	version 3: as version 2
//	version 4: as version 2
//
// Version 3 announces that the agent reads an origin header at the start
// of every stream the connector opens on the link (see [Version3]).
// Version 4 announces that the agent understands its transport's stream
// abort (see [Version4]).
//
// A version 2 agent that meets a version 1 connector gets
// AnswerIncompatible (the connector then closes the connection) and dials
// again with a version 1 hello; a version 1 agent is answered in version 1
// by every connector. A threshold of 0 means the connector did not set one.
const (
	magic       = "IOFY"
	maxPasscode = 4096
)

// Hello versions.
const (
	// Version1 is the first hello: the connector answers one byte.
	Version1 byte = 1
	// Version2 adds [Terms] after the connector's [AnswerOK].
	Version2 byte = 2
	// Version3 adds an origin header at the start of every stream the
	// connector opens on the link ([Endpoint.Open]), read by the agent's
	// [Session.Accept]:
	//
	//	length (1 byte, at most sdk.MaxOriginLen) | origin
	//
	// where the origin is [sdk.Origin]'s wire form, and length 0 means
	// none. Streams the agent opens carry no header.
	Version3 byte = 3
	// Version4 is version 3, and both ends may abort a stream: the side
	// that closes a stream before the peer's end of it tells the peer to
	// stop writing to it. How is the transport's: transports/yamux sends a
	// message on its control stream (yamux has no stream reset); a
	// multiplexer with its own (QUIC's STOP_SENDING) needs nothing more,
	// and treats version 4 as version 3.
	Version4 byte = 4
	// Version is the newest version: what agents send first, and the
	// highest a connector reads. An agent refused as incompatible dials
	// again with the version before.
	Version = Version4
)

// Answer is the connector's one-byte answer to an agent's hello.
type Answer byte

// Answers to the hello.
const (
	// AnswerOK admits the agent; the multiplexer starts next.
	AnswerOK Answer = iota
	// AnswerBadPasscode refuses a wrong passcode ([sdk.ErrBadPasscode]).
	AnswerBadPasscode
	// AnswerLinkLimit refuses an agent because the endpoint is full
	// ([sdk.ErrLinkLimit]).
	AnswerLinkLimit
	// AnswerIncompatible refuses a hello of another version
	// ([sdk.ErrIncompatible]).
	AnswerIncompatible
)

// Terms are what a connector tells an agent it admits, from hello
// version 2 on.
type Terms struct {
	// HeartbeatThreshold is how long the connector lets the agent's link
	// stay silent before it drops it (the mapping's threshold). Zero means
	// the connector did not say (version 1) or has none. It travels in
	// whole milliseconds, at most 2^32-1.
	HeartbeatThreshold time.Duration
}

// Hello is an agent's hello as the connector read it.
type Hello struct {
	// Version is the hello's version, which the answer must follow.
	Version byte
}

// Handshake is the passcode exchange of one transport. Its zero value
// works; its methods are safe for concurrent use.
type Handshake struct {
	// Name prefixes the errors the handshake makes itself, as in
	// "yamux: ..."; empty means "muxkit".
	Name string
	// ErrProtocol is returned, or wrapped, when the peer sends bytes that
	// do not follow the handshake; nil means [ErrProtocol].
	ErrProtocol error
	// Version is the hello version an agent sends ([Handshake.WriteHello])
	// and reads the answer in ([Handshake.ReadAnswer]); zero means
	// [Version]. A connector reads hellos of every version it knows,
	// whatever this is.
	Version byte
}

func (h Handshake) name() string {
	if h.Name == "" {
		return "muxkit"
	}
	return h.Name
}

func (h Handshake) errProtocol() error {
	if h.ErrProtocol == nil {
		return ErrProtocol
	}
	return h.ErrProtocol
}

func (h Handshake) version() byte {
	if h.Version == 0 {
		return Version
	}
	return h.Version
}

// WriteHello sends an agent's hello carrying passcode, in
// [Handshake.Version]. A passcode longer than 4096 bytes, or a version
// this package does not know, is refused with an error wrapping
// [sdk.ErrInvalidConfig]; write errors are returned as they are.
func (h Handshake) WriteHello(w io.Writer, passcode string) error {
	if len(passcode) > maxPasscode {
		return fmt.Errorf("%s: %w: passcode longer than %d bytes", h.name(), sdk.ErrInvalidConfig, maxPasscode)
	}
	v := h.version()
	if v > Version {
		return fmt.Errorf("%s: %w: unknown hello version %d", h.name(), sdk.ErrInvalidConfig, v)
	}
	b := make([]byte, 0, len(magic)+3+len(passcode))
	b = append(b, magic...)
	b = append(b, v)
	b = binary.BigEndian.AppendUint16(b, uint16(len(passcode)))
	b = append(b, passcode...)
	_, err := w.Write(b)
	return err
}

// ReadHello reads an agent's hello and returns the answer to send, and
// the hello to send it with ([Hello.WriteAnswer]): [AnswerOK] only when
// the passcode matches want (compared in constant time), and
// [AnswerIncompatible] for a version this package does not know. Bytes
// that are no hello return the protocol error; read errors are returned
// as they are. It reads at most 4103 bytes.
func (h Handshake) ReadHello(r io.Reader, want string) (Answer, Hello, error) {
	var hdr [len(magic) + 3]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, Hello{}, err
	}
	if string(hdr[:len(magic)]) != magic {
		return 0, Hello{}, h.errProtocol()
	}
	hello := Hello{Version: hdr[len(magic)]}
	if hello.Version < Version1 || hello.Version > Version {
		// Answered in version 1, which every agent reads.
		return AnswerIncompatible, Hello{Version: Version1}, nil
	}
	n := binary.BigEndian.Uint16(hdr[len(magic)+1:])
	if n > maxPasscode {
		return 0, Hello{}, h.errProtocol()
	}
	got := make([]byte, n)
	if _, err := io.ReadFull(r, got); err != nil {
		return 0, Hello{}, err
	}
	if subtle.ConstantTimeCompare(got, []byte(want)) != 1 {
		return AnswerBadPasscode, hello, nil
	}
	return AnswerOK, hello, nil
}

// WriteAnswer sends the connector's answer in the hello's version: from
// version 2 on, an [AnswerOK] carries terms.
func (h Hello) WriteAnswer(w io.Writer, a Answer, terms Terms) error {
	if h.Version < Version2 || a != AnswerOK {
		_, err := w.Write([]byte{byte(a)})
		return err
	}
	var b [5]byte
	b[0] = byte(a)
	binary.BigEndian.PutUint32(b[1:], millis(terms.HeartbeatThreshold))
	_, err := w.Write(b[:])
	return err
}

// millis is d in whole milliseconds, rounded up so that a positive
// threshold never travels as 0, and capped at 2^32-1.
func millis(d time.Duration) uint32 {
	if d <= 0 {
		return 0
	}
	ms := (d + time.Millisecond - 1) / time.Millisecond
	if ms > math.MaxUint32 {
		return math.MaxUint32
	}
	return uint32(ms)
}

// WriteAnswer sends a version 1 answer: one byte.
func WriteAnswer(w io.Writer, a Answer) error {
	return Hello{Version: Version1}.WriteAnswer(w, a, Terms{})
}

// ReadAnswer reads the connector's answer to a hello of
// [Handshake.Version]: the terms (zero in version 1) for [AnswerOK], else
// [sdk.ErrBadPasscode], [sdk.ErrLinkLimit] or [sdk.ErrIncompatible], an
// error wrapping the protocol error for an unknown answer, and one
// wrapping io.EOF or io.ErrUnexpectedEOF when the connector closed the
// connection instead of answering.
func (h Handshake) ReadAnswer(r io.Reader) (Terms, error) {
	var b [1]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return Terms{}, h.closed(err)
	}
	switch Answer(b[0]) {
	case AnswerOK:
	case AnswerBadPasscode:
		return Terms{}, sdk.ErrBadPasscode
	case AnswerLinkLimit:
		return Terms{}, sdk.ErrLinkLimit
	case AnswerIncompatible:
		return Terms{}, sdk.ErrIncompatible
	default:
		return Terms{}, fmt.Errorf("%w: answer %d", h.errProtocol(), b[0])
	}
	if h.version() < Version2 {
		return Terms{}, nil
	}
	var t [4]byte
	if _, err := io.ReadFull(r, t[:]); err != nil {
		return Terms{}, h.closed(err)
	}
	return Terms{HeartbeatThreshold: time.Duration(binary.BigEndian.Uint32(t[:])) * time.Millisecond}, nil
}

func (h Handshake) closed(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%s: connector closed the connection during the handshake: %w", h.name(), err)
	}
	return err
}

// MinBeatInterval is the shortest interval [BeatInterval] derives from a
// threshold of half a second or more.
const MinBeatInterval = 250 * time.Millisecond

// BeatInterval returns how often a side proves it is alive to a peer that
// drops links silent for threshold: a quarter of it, so that three beats
// in a row may be late or lost, but not under [MinBeatInterval] unless
// the threshold is under half a second (which connectors refuse but
// restored mappings and tests may have): then half of it, and never under
// 10 ms. A positive interval that is shorter (the agent's own setting) is
// used as is. A threshold of zero or less means
// [sdk.DefaultHeartbeatThreshold].
func BeatInterval(threshold, interval time.Duration) time.Duration {
	if threshold <= 0 {
		threshold = sdk.DefaultHeartbeatThreshold
	}
	every := min(max(threshold/4, MinBeatInterval), threshold/2)
	every = max(every, 10*time.Millisecond)
	if interval > 0 && interval < every {
		every = interval
	}
	return every
}

// DialVersions is an agent's dial with hello version fallback: it calls
// dial with [Version] and, while the connector refuses the hello as
// incompatible (an error wrapping [sdk.ErrIncompatible]: a connector of
// an earlier release) and ctx lasts, with each older version down to
// [Version1]. It returns what the last call returned. log (nil discards)
// gets a debug line per retry.
func DialVersions(ctx context.Context, log *slog.Logger, dial func(version byte) (sdk.Session, error)) (sdk.Session, error) {
	s, err := dial(Version)
	for v := Version - 1; v >= Version1 && errors.Is(err, sdk.ErrIncompatible) && ctx.Err() == nil; v-- {
		sdk.Logger(log).Debug("the connector speaks an older handshake; dialling again", "hello_version", v)
		s, err = dial(v)
	}
	return s, err
}
