module github.com/beo-cluster/beo

go 1.26.0

require (
	github.com/hashicorp/yamux v0.1.2
	golang.org/x/sys v0.49.0
)
