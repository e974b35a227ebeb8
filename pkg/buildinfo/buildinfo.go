// Package buildinfo carries the version and build hash that the Makefile
// stamps into the binary with -ldflags -X. The master compares the build
// hash a node reports with its own and refuses a node running another build,
// so a node can never run code that disagrees with its master about the wire
// protocol.
//
// Version is `git describe --always --dirty` at build time; Hash is a SHA-256
// over every tracked source file (go.mod, go.sum, *.go), so two builds of the
// same tree agree even from different checkouts. A plain `go build` leaves the
// defaults "dev" and "unstamped".
package buildinfo

// Set by the linker: -X github.com/beo-cluster/beo/pkg/buildinfo.version=…
var (
	version = "dev"
	hash    = "unstamped"
)

// Version returns the release version of this binary.
func Version() string { return version }

// Hash returns the build hash of this binary.
func Hash() string { return hash }
