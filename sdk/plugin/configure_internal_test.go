package plugin

import (
	"context"
	"errors"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/iofog/iofog-connector/sdk"
	"github.com/iofog/iofog-connector/sdk/plugin/internal/pb"
)

// olderPlugin is the client of a plugin built before Configure existed.
type olderPlugin struct {
	pb.TransportClient
	calls int
}

func (o *olderPlugin) Configure(context.Context, *pb.ConfigureRequest, ...grpc.CallOption) (*pb.ErrorResponse, error) {
	o.calls++
	return nil, status.Error(codes.Unimplemented, "unknown method Configure")
}

// TestConfigureOlderPlugin: a plugin of an earlier release is not called
// without settings, so it runs as before, and given settings it is
// refused with the key named, not silently left unconfigured.
func TestConfigureOlderPlugin(t *testing.T) {
	old := &olderPlugin{}
	r := &Remote{c: old, info: Info{Name: "old", SDKVersion: "1.0.0"}}
	if err := r.Configure(t.Context(), map[string]any{}); err != nil || old.calls != 0 {
		t.Fatalf("Configure(no settings) = %v after %d calls; want nil and no call", err, old.calls)
	}
	err := r.Configure(t.Context(), map[string]any{"path": "/x"})
	if err == nil || !strings.Contains(err.Error(), "transports.old.path: the old plugin (sdk 1.0.0) predates plugin settings") ||
		!errors.Is(err, sdk.ErrInvalidConfig) {
		t.Fatalf("Configure(settings) on an older plugin = %v", err)
	}
}
