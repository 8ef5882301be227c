//go:build race

package yamux

// raceBuild is true when the tests run under the race detector. There
// sync.Pool drops a quarter of the items put back, so code that takes its
// buffers from a pool (crypto/tls's record buffers) allocates now and
// then.
const raceBuild = true
