//go:build !race

package main

// e2eRace is true when the tests run with -race; the e2e binary is then
// built with -race too, so races in the daemon fail the tests.
const e2eRace = false
