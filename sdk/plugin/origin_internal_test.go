package plugin

import (
	"net/netip"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/iofog/iofog-connector/sdk"
	"github.com/iofog/iofog-connector/sdk/plugin/internal/pb"
)

// TestOriginWire: an origin round trips through the protobuf message; a
// malformed one is refused; and an OpenRequest reads as the Handle a
// plugin of an earlier release expects, so that it opens the stream
// without the origin.
func TestOriginWire(t *testing.T) {
	o := sdk.Origin{Client: netip.MustParseAddrPort("127.0.0.2:40000"), Local: netip.MustParseAddrPort("[::1]:7001"), Proxy: sdk.ProxyV2}
	got, ok, err := fromPBOrigin(toPBOrigin(o, true))
	if err != nil || !ok || got != o {
		t.Fatalf("round trip %+v, %v, %v; want %+v", got, ok, err, o)
	}
	if toPBOrigin(o, false) != nil || toPBOrigin(sdk.Origin{}, true) != nil {
		t.Fatal("toPBOrigin sent an origin it was not given, or an invalid one")
	}
	if _, ok, err := fromPBOrigin(nil); ok || err != nil {
		t.Fatal("no origin read as one")
	}
	good := toPBOrigin(o, true)
	for name, bad := range map[string]*pb.Origin{
		"short ip":   {ClientIp: []byte{1, 2, 3}, ClientPort: 1, LocalIp: good.LocalIp, LocalPort: 2, Proxy: 1},
		"mapped ip":  {ClientIp: netip.MustParseAddr("::ffff:1.2.3.4").AsSlice(), ClientPort: 1, LocalIp: good.LocalIp, LocalPort: 2, Proxy: 1},
		"big port":   {ClientIp: good.ClientIp, ClientPort: 65536, LocalIp: good.LocalIp, LocalPort: 2, Proxy: 1},
		"no local":   {ClientIp: good.ClientIp, ClientPort: 1, Proxy: 1},
		"proxy 0":    {ClientIp: good.ClientIp, ClientPort: 1, LocalIp: good.LocalIp, LocalPort: 2},
		"proxy 3":    {ClientIp: good.ClientIp, ClientPort: 1, LocalIp: good.LocalIp, LocalPort: 2, Proxy: 3},
		"proxy 1<<8": {ClientIp: good.ClientIp, ClientPort: 1, LocalIp: good.LocalIp, LocalPort: 2, Proxy: 257},
	} {
		if _, ok, err := fromPBOrigin(bad); err == nil || ok {
			t.Errorf("%s: accepted", name)
		}
	}
	b, err := proto.Marshal(&pb.OpenRequest{Id: 42, Origin: good})
	if err != nil {
		t.Fatal(err)
	}
	var h pb.Handle
	if err := proto.Unmarshal(b, &h); err != nil || h.GetId() != 42 {
		t.Fatalf("an OpenRequest read as a Handle: %v, id %d", err, h.GetId())
	}
}
