package plugins

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Prefix starts the file name of every transport plugin executable.
const Prefix = "iofog-transport-"

// Discover returns the paths of the plugin executables in dir, sorted. An
// empty dir means none.
func Discover(dir string) ([]string, error) {
	if dir == "" {
		return nil, nil
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("plugins: %w", err)
	}
	var paths []string
	for _, ent := range ents {
		if !strings.HasPrefix(ent.Name(), Prefix) {
			continue
		}
		p := filepath.Join(dir, ent.Name())
		st, err := os.Stat(p) // follows symlinks
		if err != nil || !st.Mode().IsRegular() || st.Mode()&0o111 == 0 {
			continue
		}
		paths = append(paths, p)
	}
	sort.Strings(paths)
	return paths, nil
}

// Load starts every plugin in dir. On error the plugins already started
// are stopped. The caller closes every returned Transport.
func Load(ctx context.Context, dir string, cfg Config) ([]*Transport, error) {
	paths, err := Discover(dir)
	if err != nil {
		return nil, err
	}
	var ts []*Transport
	byName := map[string]string{}
	for _, p := range paths {
		t, err := Start(ctx, p, cfg)
		if err == nil {
			if prev, dup := byName[t.Name()]; dup {
				t.Close()
				err = fmt.Errorf("%w: %q by %s and %s", ErrDuplicate, t.Name(), prev, p)
			} else {
				byName[t.Name()] = p
			}
		}
		if err != nil {
			for _, t := range ts {
				t.Close()
			}
			return nil, err
		}
		ts = append(ts, t)
	}
	return ts, nil
}

// CloseAll closes every transport and joins their errors.
func CloseAll(ts []*Transport) error {
	var errs []error
	for _, t := range ts {
		errs = append(errs, t.Close())
	}
	return errors.Join(errs...)
}
