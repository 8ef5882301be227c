//go:build !race

package yamux

// raceBuild is true when the tests run under the race detector.
const raceBuild = false
