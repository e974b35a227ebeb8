//go:build !amd64

package slave

// spawnImage is empty where no small trampoline exists: jobs with other
// limits start through the Go one (spawn_small.go).
var spawnImage []byte
