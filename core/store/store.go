package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
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
	// OnSync, when not nil, is called with how long each fsync of the
	// journal took (one per batch of changes, failed ones included), on
	// the store's writer goroutine: it must be quick and must not call
	// the store. Nil costs nothing.
	OnSync func(time.Duration)
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
	st      *state
	journal *os.File
	size    int64 // bytes of the journal known good
	dirty   bool  // a failed append may have left bytes past size
	records int
}

type request struct {
	rec  record
	line []byte
	err  chan error
}

// Open loads the mappings in dir, compacts them into configs.json and
// returns the store with the mappings in their stored order. A missing
// store is an empty one. A damaged one is an error wrapping [ErrCorrupt]
// that names the file (and the journal record), and nothing is written.
//
// When the data dir is full Open cannot compact; it then runs on the
// journal as it is, unless that journal is in the format of an older
// version, and the error wraps [ErrNoSpace].
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
		dir:    dir,
		opts:   opts,
		lock:   lock,
		reqs:   make(chan *request, 256),
		done:   make(chan struct{}),
		closed: make(chan struct{}),
	}
	j, err := s.load()
	if err != nil {
		lock.Close()
		return nil, nil, err
	}
	// Only a store read without error reaches this point: nothing is ever
	// rewritten because it could not be read.
	if err := s.compact(); err != nil {
		if !errors.Is(err, ErrNoSpace) || j.format == formatLegacy {
			if s.journal != nil {
				s.journal.Close()
			}
			lock.Close()
			return nil, nil, err
		}
		if err := s.resume(j); err != nil {
			lock.Close()
			return nil, nil, err
		}
	}
	go s.writer()
	return s, s.st.list(), nil
}

// load reads configs.json and replays the journal onto it.
func (s *Store) load() (journal, error) {
	cpath := filepath.Join(s.dir, ConfigsFile)
	configs, err := os.ReadFile(cpath)
	hasConfigs := err == nil
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return journal{}, fmt.Errorf("store: read %s: %w", cpath, err)
	}
	jpath := filepath.Join(s.dir, JournalFile)
	jb, err := os.ReadFile(jpath)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return journal{}, fmt.Errorf("store: read %s: %w", jpath, err)
	}
	st, j, err := loadState(cpath, configs, hasConfigs, jpath, jb)
	if err != nil {
		return journal{}, err
	}
	s.st = st
	return j, nil
}

// resume appends to the journal j as it is on disk, after cutting off its
// torn final record, when the data dir is too full to compact it at Open.
func (s *Store) resume(j journal) error {
	path := filepath.Join(s.dir, JournalFile)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("store: journal: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("store: journal: %w", err)
	}
	good, records := j.good, len(j.entries)
	switch fi.Size() {
	case j.good + int64(j.torn): // the journal as loaded
	case 0:
		// Emptied by the failed compaction after configs.json was
		// written: configs.json holds everything.
		good, records = 0, 0
	default:
		f.Close()
		return fmt.Errorf("store: journal %s: %d bytes, loaded %d", path, fi.Size(), j.good+int64(j.torn))
	}
	if fi.Size() > good {
		if err := f.Truncate(good); err != nil {
			f.Close()
			return ioErr("journal: cut off the torn final record", err)
		}
	}
	if _, err := f.Seek(good, io.SeekStart); err != nil {
		f.Close()
		return fmt.Errorf("store: journal: %w", err)
	}
	if s.journal != nil {
		s.journal.Close()
	}
	s.journal, s.size, s.records, s.dirty = f, good, records, false
	return nil
}

// compact writes every mapping into configs.json atomically and empties
// the journal.
func (s *Store) compact() error {
	b, err := encodeConfigs(s.st.list())
	if err != nil {
		return err
	}
	if err := writeAtomic(s.dir, ConfigsFile, b); err != nil {
		return err
	}
	// configs.json now holds everything. Should emptying the journal fail,
	// the old journal stays in use: replaying it again onto this
	// configs.json ends in the same state.
	j, err := os.OpenFile(filepath.Join(s.dir, JournalFile), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return ioErr("journal", err)
	}
	if s.journal != nil {
		s.journal.Close()
	}
	s.journal, s.records, s.size, s.dirty = j, 0, 0, false
	if err := j.Sync(); err != nil {
		return ioErr("journal", err)
	}
	return syncDir(s.dir)
}

// ioErr wraps err from writing the data dir, with [ErrNoSpace] when the
// disk or the file size limit is full.
func ioErr(what string, err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) || errors.Is(err, syscall.EFBIG) {
		return fmt.Errorf("%w: %s: %w", ErrNoSpace, what, err)
	}
	return fmt.Errorf("store: %s: %w", what, err)
}

func writeAtomic(dir, name string, b []byte) error {
	tmp, err := os.CreateTemp(dir, name+".tmp-*")
	if err != nil {
		return ioErr("write "+name, err)
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return ioErr("write "+name, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return ioErr("write "+name, err)
	}
	if err := tmp.Close(); err != nil {
		return ioErr("write "+name, err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, name)); err != nil {
		return ioErr("write "+name, err)
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
		return ioErr("sync dir", err)
	}
	return nil
}

// Add stores m durably, replacing a stored mapping with the same id. It
// returns once m is on disk. It refuses a mapping [Open] would refuse,
// such as one on a port another stored mapping uses; on a full data dir
// the error wraps [ErrNoSpace] and nothing changed.
func (s *Store) Add(ctx context.Context, m Mapping) error {
	if err := check(m); err != nil {
		return fmt.Errorf("store: add: %w", err)
	}
	return s.do(ctx, record{Op: opAdd, Mapping: &m})
}

// Remove deletes the mapping id durably; removing an unknown id is not an
// error. It returns once the removal is on disk; on a full data dir the
// error wraps [ErrNoSpace] and the mapping stays stored.
func (s *Store) Remove(ctx context.Context, id string) error {
	if id == "" {
		return errors.New("store: remove: id is empty")
	}
	return s.do(ctx, record{Op: opRemove, ID: id})
}

func (s *Store) do(ctx context.Context, rec record) error {
	line, err := encodeRecord(rec)
	if err != nil {
		return err
	}
	req := &request{rec: rec, line: line, err: make(chan error, 1)}
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
		// Check the batch against the stored state before writing any of
		// it: the journal must never hold a state Open would refuse.
		ov := newOverlay(s.st)
		buf = buf[:0]
		ok := batch[:0:0]
		for _, r := range batch {
			if err := ov.apply(r.rec); err != nil {
				r.err <- err
				continue
			}
			buf = append(buf, r.line...)
			ok = append(ok, r)
		}
		if len(ok) == 0 {
			continue
		}
		err := s.appendSync(buf)
		if err == nil {
			for _, r := range ok {
				s.apply(r.rec)
			}
			s.records += len(ok)
			if s.records >= s.opts.CompactAfter {
				// The journal already holds the batch; a failed
				// compaction leaves it to be replayed.
				_ = s.compact()
			}
		}
		for _, r := range ok {
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
// full disk) cannot sit in the middle of the journal under later records;
// should that cut fail too, it is retried before the next append, which
// fails until it succeeds.
func (s *Store) appendSync(b []byte) error {
	if s.dirty {
		if err := s.cutBack(); err != nil {
			return ioErr("journal: cut back a failed append", err)
		}
	}
	_, err := s.journal.Write(b)
	if err == nil {
		err = s.sync()
	}
	if err != nil {
		s.dirty = true
		if s.cutBack() == nil {
			s.dirty = false
		}
		return ioErr("journal append, change not saved", err)
	}
	s.size += int64(len(b))
	return nil
}

// sync fsyncs the journal, timed for Options.OnSync.
func (s *Store) sync() error {
	if s.opts.OnSync == nil {
		return s.journal.Sync()
	}
	start := time.Now()
	err := s.journal.Sync()
	s.opts.OnSync(time.Since(start))
	return err
}

func (s *Store) cutBack() error {
	if err := s.journal.Truncate(s.size); err != nil {
		return err
	}
	if _, err := s.journal.Seek(s.size, io.SeekStart); err != nil {
		return err
	}
	s.dirty = false
	return nil
}

func (s *Store) apply(rec record) {
	switch rec.Op {
	case opAdd:
		s.st.put(*rec.Mapping)
	case opRemove:
		s.st.remove(rec.ID)
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
