package daemon

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/iofog/iofog-connector/core/settings"
	"github.com/iofog/iofog-connector/core/store"
)

// adoptLegacyStore copies the legacy connector's mappings file, kept beside
// the settings file (/etc/iofog-connector/configs.json), into the data dir
// when the data dir has no store of its own yet, so that an upgrade from the
// legacy package keeps every mapping the Controller made. It copies (the
// legacy file is never moved, changed or removed) and never overwrites: a
// data dir holding configs.json or a journal is left alone. The legacy file
// is checked with the store's own loader first; a damaged or unreadable one
// stops start-up with an error naming it, because starting empty would lose
// the Controller's mappings.
func adoptLegacyStore(s *settings.Settings, log *slog.Logger) error {
	if s.File == "" {
		return nil // dev defaults: no settings file, no legacy directory
	}
	legacyDir := filepath.Dir(s.File)
	if same, err := sameDir(legacyDir, s.DataDir); err != nil || same {
		return err
	}
	src := filepath.Join(legacyDir, store.ConfigsFile)
	b, err := os.ReadFile(src)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("legacy mappings file %s: %w (it is adopted into data-dir %s on first start)", src, err, s.DataDir)
	}
	for _, name := range []string{store.ConfigsFile, store.JournalFile} {
		_, err := os.Lstat(filepath.Join(s.DataDir, name))
		if err == nil {
			log.Debug("legacy mappings file not adopted: the data dir has its own store", "legacy", src, "data_dir", s.DataDir)
			return nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("data-dir %s: %w", s.DataDir, err)
		}
	}
	n, err := checkLegacyStore(b, s.DataDir)
	if err != nil {
		return fmt.Errorf("legacy mappings file %s not adopted, nothing was written: %w", src, err)
	}
	dst := filepath.Join(s.DataDir, store.ConfigsFile)
	if err := writeNew(dst, b); err != nil {
		return fmt.Errorf("adopting legacy mappings file %s: %w", src, err)
	}
	log.Info("legacy mappings file adopted into the data dir (copied; the original is kept unchanged)",
		"legacy", src, "copy", dst, "mappings", n, "bytes", len(b))
	return nil
}

// checkLegacyStore loads b with the store's loader in a scratch directory
// inside dataDir and returns the number of mappings.
func checkLegacyStore(b []byte, dataDir string) (int, error) {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return 0, err
	}
	tmp, err := os.MkdirTemp(dataDir, ".adopt-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(tmp)
	if err := os.WriteFile(filepath.Join(tmp, store.ConfigsFile), b, 0o600); err != nil {
		return 0, err
	}
	st, ms, err := store.Open(tmp, store.Options{})
	if err != nil {
		return 0, err
	}
	return len(ms), st.Close()
}

// writeNew writes b to path durably without ever replacing an existing
// file: a temporary file is written and fsync'd, then hard-linked to path
// (which fails if path exists), and the directory is fsync'd.
func writeNew(path string, b []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".adopt-*.tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Link(tmp, path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// sameDir reports whether a and b name the same directory. A b that does
// not exist yet is not the same as an existing a.
func sameDir(a, b string) (bool, error) {
	ia, err := os.Stat(a)
	if err != nil {
		return false, fmt.Errorf("settings directory %s: %w", a, err)
	}
	ib, err := os.Stat(b)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("data-dir %s: %w", b, err)
	}
	return os.SameFile(ia, ib), nil
}
