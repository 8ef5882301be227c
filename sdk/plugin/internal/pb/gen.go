// Package pb holds the generated gRPC code of the transport plugin
// protocol. It is internal: no exported signature of sdk/plugin uses it.
package pb

//go:generate protoc --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative transport.proto
