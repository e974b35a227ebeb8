//go:build !amd64

package ghost

// image is empty where no ghost program exists: Start fails with
// ErrUnsupported and clients run without ghosts.
var image []byte
