package api

import (
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// TestSetTokenSwaps: after SetToken only the new token opens the API, ""
// turns the check off, and requests checked while the token changes get
// either answer of the two tokens, never a panic or a race (go test -race).
func TestSetTokenSwaps(t *testing.T) {
	const newToken = "n3w-token-abcdefghijklmnop"
	srv := New(Config{Core: &fakeCore{}, Token: testToken})
	h := srv.Handler()
	status := func(tok string) int {
		hdr := map[string]string{}
		if tok != "" {
			hdr["Authorization"] = "Bearer " + tok
		}
		return send(t, h, "POST", "/api/v2/status", form("mappingid", "all"), hdr).code
	}
	if got := status(testToken); got != 200 {
		t.Fatalf("old token before the swap: %d", got)
	}
	srv.SetToken(newToken)
	if got := status(testToken); got != 401 {
		t.Fatalf("old token after the swap: %d, want 401", got)
	}
	if got := status(newToken); got != 200 {
		t.Fatalf("new token after the swap: %d, want 200", got)
	}
	if got := status(""); got != 401 {
		t.Fatalf("no token after the swap: %d, want 401", got)
	}
	srv.SetToken("")
	if got := status(""); got != 200 {
		t.Fatalf("no token with the check off: %d, want 200", got)
	}

	srv.SetToken(testToken)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := range 200 {
			if i%2 == 0 {
				srv.SetToken(newToken)
			} else {
				srv.SetToken(testToken)
			}
		}
	}()
	go func() {
		defer wg.Done()
		for range 200 {
			r := httptest.NewRequest("POST", "/api/v2/status", strings.NewReader(form("mappingid", "all")))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			r.Header.Set("Authorization", "Bearer "+newToken)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != 200 && w.Code != 401 {
				t.Errorf("answer %d during swaps", w.Code)
				return
			}
		}
	}()
	wg.Wait()
}
