package main

// version is the connector's version; release builds set it with
// -ldflags "-X main.version=...".
var version = "1.0.0-dev"
