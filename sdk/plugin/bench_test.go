package plugin_test

import (
	"testing"

	"github.com/iofog/iofog-connector/sdk/internal/reftransport"
	"github.com/iofog/iofog-connector/sdk/transporttest"
)

// BenchmarkStream moves bytes one way through one stream of the reference
// transport (64 KiB writes, transporttest.BenchThroughput), in process and
// through the plugin adapter (gRPC control, unix socket stream hop), to
// show the cost of the boundary.
func BenchmarkStream(b *testing.B) {
	b.Run("inprocess", func(b *testing.B) {
		transporttest.BenchThroughput(b, transporttest.Pairs(b, reftransport.New(), "tcp"))
	})
	b.Run("plugin", func(b *testing.B) {
		transporttest.BenchThroughput(b, transporttest.Pairs(b, remote(b, reftransport.New()), "tcp"))
	})
}
