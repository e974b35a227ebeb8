// Package head composes the head node: it owns the cluster config (its
// one load and its one reload path) and the lifetime of every daemon
// `beo master` runs. The applets `beo master`, `bpmaster`, `beoserv`,
// `recvstats` and `kickbackdaemon`, and the simulated cluster (pkg/sim),
// all build on it; no applet is imported from pkg/.
//
// # Pieces
//
//   - Reloader (reloader.go): Load reads and validates /etc/beowulf/config
//     once; Reload re-reads it for SIGHUP, `beo master reload` (bpmaster's
//     wire.OpReload) and systemd's ExecReload alike. A file with errors,
//     or one the boot server refuses, is not applied anywhere: the
//     running config stays and every file:line is logged and returned.
//     Before applying, the up nodes it would drop are logged. The boot
//     server owns the file (it rewrites it when it adds a node or moves a
//     pxe+local node to local) and hands its own edits back with Adopt;
//     every other daemon follows.
//   - Unit and Run (run.go): each daemon is a constructor that opens its
//     sockets and a Serve(ctx) that runs until ctx ends; Run runs a list
//     of them, the first failure stopping the rest (and naming its unit),
//     catches SIGHUP for the Reloader, and speaks systemd's notify
//     protocol (READY=1 once every unit started, RELOADING=1 with
//     MONOTONIC_USEC around each reload, STOPPING=1) through
//     coreos/go-systemd when NOTIFY_SOCKET is set.
//   - Head (head.go, nodeside.go): `beo master` — bpmaster (nodes' TCP
//     port and the clients' unix socket), the boot server with the node
//     log receiver and kickback when a cluster interface is known, the
//     stats receiver and the beostatus dashboard; the boot package is
//     brought up to date before anything answers.
//   - beo-master.service: the systemd unit `make install` installs
//     (Type=notify, ExecReload=beo master reload, hardening that leaves
//     DHCP, raw sockets, netlink and users' files working; the unit
//     explains each choice). `beo master status` works with or without
//     systemd: it asks bpmaster over its socket (exit 3 when none runs).
//
// Every listener the head owns survives what clients can do to it: the
// accept loops back off on EMFILE and kin (pkg/accept), and complaints
// about bad peers are throttled (pkg/ratelog).
package head
