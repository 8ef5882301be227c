package plugin

import (
	"strings"
	"testing"

	"github.com/iofog/iofog-connector/sdk"
	"github.com/iofog/iofog-connector/sdk/plugin/internal/pb"
)

// TestInfoOfEarlierPlugin: a plugin of an earlier release sends no
// capabilities; the host reports none, and says it was not told.
func TestInfoOfEarlierPlugin(t *testing.T) {
	old := infoFromPB(&pb.InfoResponse{Name: "old", SdkVersion: "1.0.0", ProtocolVersion: 1})
	if old.CapabilitiesReported || old.Capabilities != (sdk.Capabilities{}) {
		t.Fatalf("an earlier plugin's info: %+v, want no capabilities, not reported", old)
	}
	cur := infoFromPB(&pb.InfoResponse{Name: "new", Capabilities: &pb.Capabilities{Multiplexed: true}})
	if !cur.CapabilitiesReported || cur.Capabilities != (sdk.Capabilities{Multiplexed: true}) {
		t.Fatalf("info: %+v, want Multiplexed reported", cur)
	}
}

// TestFailedByReasonBounded: a plugin cannot grow the host's stats with
// endless or long reasons.
func TestFailedByReasonBounded(t *testing.T) {
	m := map[string]int64{strings.Repeat("x", 33): 1, "zero": 0}
	for i := range 40 {
		m[strings.Repeat("r", i%32+1)+string(rune('a'+i%26))] = 1
	}
	got := failedByReason(m)
	if len(got) > 16 {
		t.Fatalf("%d reasons kept, want at most 16", len(got))
	}
	for k, v := range got {
		if len(k) > 32 || v <= 0 {
			t.Fatalf("kept %q = %d", k, v)
		}
	}
	if failedByReason(nil) != nil {
		t.Fatal("no reasons should stay nil")
	}
}
