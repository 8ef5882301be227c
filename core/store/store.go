package store

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"
)

// File names inside the data dir.
const (
	// ConfigsFile is the legacy mappings file.
	ConfigsFile = "configs.json"
	// JournalFile holds changes not yet compacted into ConfigsFile.
	JournalFile = "configs.journal"
	// LockFile is held (flock) while a Store is open.
	LockFile = "configs.lock"
)

// DefaultCompactAfter is how many journal records trigger a compaction
// when Options.CompactAfter is zero.
const DefaultCompactAfter = 20000

// Options tune a Store.
type Options struct {
	// CompactAfter is the journal length (records) after which the journal
	// is folded into configs.json. Zero means DefaultCompactAfter.
	CompactAfter int
}

// Store is the durable set of mappings. It is safe for concurrent use.
type Store struct {
	dir     string
	opts    Options
	lock    *os.File
	reqs    chan *request
	done    chan struct{}
	closeMu sync.Once
	closed  chan struct{}

	// owned by the writer goroutine (and by Open before it starts)
	mappings map[string]Mapping
	order    []string // ids in insertion order, with holes for removed ids
	journal  *os.File
	size     int64 // bytes of the journal known good
	records  int
}

type request struct {
	rec  record
	line []byte
	err  chan error
}

// Open loads the mappings in dir, compacts them into configs.json and
// returns the store with the mappings in their stored order. A missing
// store is an empty one. A corrupt one is an error wrapping [ErrCorrupt],
// and nothing is written.
func Open(dir string, opts Options) (*Store, []Mapping, error) {
	if opts.CompactAfter <= 0 {
		opts.CompactAfter = DefaultCompactAfter
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("store: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, LockFile), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("store: %w", err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		return nil, nil, fmt.Errorf("%w: %s", ErrLocked, dir)
	}
	s := &Store{
		dir:      dir,
		opts:     opts,
		lock:     lock,
		reqs:     make(chan *request, 256),
		done:     make(chan struct{}),
		closed:   make(chan struct{}),
		mappings: map[string]Mapping{},
	}
	if err := s.load(); err != nil {
		lock.Close()
		return nil, nil, err
	}
	if err := s.compact(); err != nil {
		lock.Close()
		return nil, nil, err
	}
	go s.writer()
	return s, s.list(), nil
}

// load reads configs.json then replays the journal.
func (s *Store) load() error {
	path := filepath.Join(s.dir, ConfigsFile)
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return fmt.Errorf("store: read %s: %w", path, err)
	case len(bytes.TrimSpace(b)) == 0:
		return fmt.Errorf("%w: %s is empty", ErrCorrupt, path)
	default:
		var f file
		dec := json.NewDecoder(bytes.NewReader(b))
		if err := dec.Decode(&f); err != nil {
			return fmt.Errorf("%w: %s: %v", ErrCorrupt, path, err)
		}
		for i, m := range f.Mappings {
			if err := check(m); err != nil {
				return fmt.Errorf("%w: %s: mappings[%d]: %v", ErrCorrupt, path, i, err)
			}
			s.put(m)
		}
	}
	return s.replay()
}

func (s *Store) replay() error {
	path := filepath.Join(s.dir, JournalFile)
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("store: open %s: %w", path, err)
	}
	defer f.Close()
	r := bufio.NewReader(f)
	for n := 1; ; n++ {
		line, err := r.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			// A final line without its newline was torn by a crash while
			// being written; it was never acknowledged.
			return nil
		}
		if err != nil {
			return fmt.Errorf("store: read %s: %w", path, err)
		}
		var rec record
		if err := json.Unmarshal(line, &rec); err != nil {
			return fmt.Errorf("%w: %s line %d: %v", ErrCorrupt, path, n, err)
		}
		switch {
		case rec.Op == "add" && rec.Mapping != nil && check(*rec.Mapping) == nil:
			s.put(*rec.Mapping)
		case rec.Op == "remove" && rec.ID != "":
			delete(s.mappings, rec.ID)
		default:
			return fmt.Errorf("%w: %s line %d: bad record", ErrCorrupt, path, n)
		}
	}
}

func check(m Mapping) error {
	switch {
	case m.ID == "":
		return errors.New("id is empty")
	case m.Port1 < 1 || m.Port1 > 65535:
		return fmt.Errorf("port1 %d out of range", m.Port1)
	case m.Port2 < 1 || m.Port2 > 65535:
		return fmt.Errorf("port2 %d out of range", m.Port2)
	case m.PasscodePort1 == "":
		return errors.New("passcodeport1 is empty")
	}
	return nil
}

func (s *Store) put(m Mapping) {
	if _, ok := s.mappings[m.ID]; !ok {
		s.order = append(s.order, m.ID)
	}
	s.mappings[m.ID] = m
}

// list returns the mappings in insertion order and drops holes from order.
func (s *Store) list() []Mapping {
	out := make([]Mapping, 0, len(s.mappings))
	ids := s.order[:0]
	seen := make(map[string]bool, len(s.mappings))
	for _, id := range s.order {
		if m, ok := s.mappings[id]; ok && !seen[id] {
			seen[id] = true
			out = append(out, m)
			ids = append(ids, id)
		}
	}
	s.order = ids
	return out
}

// compact writes every mapping into configs.json atomically and empties
// the journal.
func (s *Store) compact() error {
	b, err := json.MarshalIndent(file{Mappings: s.list()}, "", "  ")
	if err != nil {
		return fmt.Errorf("store: encode: %w", err)
	}
	b = append(b, '\n')
	if err := writeAtomic(s.dir, ConfigsFile, b); err != nil {
		return err
	}
	if s.journal != nil {
		s.journal.Close()
	}
	j, err := os.OpenFile(filepath.Join(s.dir, JournalFile), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("store: journal: %w", err)
	}
	if err := j.Sync(); err != nil {
		j.Close()
		return fmt.Errorf("store: journal: %w", err)
	}
	s.journal, s.records, s.size = j, 0, 0
	return syncDir(s.dir)
}

func writeAtomic(dir, name string, b []byte) error {
	tmp, err := os.CreateTemp(dir, name+".tmp-*")
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("store: write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("store: sync %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, name)); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("store: sync dir: %w", err)
	}
	return nil
}

// Add stores m durably, replacing a stored mapping with the same id. It
// returns once m is on disk.
func (s *Store) Add(ctx context.Context, m Mapping) error {
	if err := check(m); err != nil {
		return fmt.Errorf("store: add: %w", err)
	}
	return s.do(ctx, record{Op: "add", Mapping: &m})
}

// Remove deletes the mapping id durably; removing an unknown id is not an
// error. It returns once the removal is on disk.
func (s *Store) Remove(ctx context.Context, id string) error {
	return s.do(ctx, record{Op: "remove", ID: id})
}

func (s *Store) do(ctx context.Context, rec record) error {
	line, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("store: encode: %w", err)
	}
	req := &request{rec: rec, line: append(line, '\n'), err: make(chan error, 1)}
	select {
	case <-s.closed:
		return ErrClosed
	case s.reqs <- req:
	case <-ctx.Done():
		return ctx.Err()
	}
	// Once queued the change is written whatever ctx does, so wait for it:
	// the caller must know whether it is durable.
	select {
	case err := <-req.err:
		return err
	case <-s.done:
		select {
		case err := <-req.err:
			return err
		default:
			return ErrClosed // queued after the writer stopped
		}
	}
}

// writer appends batches of records with one write and one fsync each.
func (s *Store) writer() {
	defer close(s.done)
	var batch []*request
	var buf []byte
	for {
		var req *request
		select {
		case req = <-s.reqs:
		case <-s.closed:
			s.drain()
			return
		}
		batch = append(batch[:0], req)
	more:
		for len(batch) < 1024 {
			select {
			case r := <-s.reqs:
				batch = append(batch, r)
			default:
				break more
			}
		}
		buf = buf[:0]
		for _, r := range batch {
			buf = append(buf, r.line...)
		}
		err := s.appendSync(buf)
		if err == nil {
			for _, r := range batch {
				s.apply(r.rec)
			}
			s.records += len(batch)
			if s.records >= s.opts.CompactAfter {
				// The journal already holds the batch; a failed
				// compaction leaves it to be replayed.
				_ = s.compact()
			}
		}
		for _, r := range batch {
			r.err <- err
		}
	}
}

// drain fails the requests still queued at Close.
func (s *Store) drain() {
	for {
		select {
		case r := <-s.reqs:
			r.err <- ErrClosed
		default:
			return
		}
	}
}

// appendSync appends b to the journal and fsyncs it. On failure it cuts
// the journal back to its last good length, so that a partial batch (a
// full disk) cannot sit in the middle of the journal under later records.
func (s *Store) appendSync(b []byte) error {
	_, err := s.journal.Write(b)
	if err == nil {
		err = s.journal.Sync()
	}
	if err != nil {
		if terr := s.journal.Truncate(s.size); terr == nil {
			_, _ = s.journal.Seek(s.size, io.SeekStart)
		}
		return fmt.Errorf("store: journal append: %w", err)
	}
	s.size += int64(len(b))
	return nil
}

func (s *Store) apply(rec record) {
	switch rec.Op {
	case "add":
		s.put(*rec.Mapping)
	case "remove":
		delete(s.mappings, rec.ID)
		if len(s.order) > 2*len(s.mappings)+1024 {
			s.list() // drop holes
		}
	}
}

// Close folds the journal into configs.json and releases the data dir. It
// is idempotent.
func (s *Store) Close() error {
	var err error
	s.closeMu.Do(func() {
		close(s.closed)
		<-s.done
		err = s.compact()
		s.journal.Close()
		s.lock.Close()
	})
	return err
}
