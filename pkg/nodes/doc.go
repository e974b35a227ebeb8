// Package nodes is the master's node table: what it knows about each
// compute node, who may change it, who may use it, and who is told when it
// changes. One Table lives in `beo master`, shared by bpmaster, beoserv,
// recvstats and the client socket; bpstat, bpctl and bpsh see it through
// the master.
//
// # A node
//
// A Node has a number, the MACs and address config gave it (the caller
// computes node N = iprange start + N; the table just stores it), a State,
// and an owner, group and mode like a file's. Only the mode's execute bits
// mean anything, so only those are kept: the default 0111 root:root
// (`---x--x--x`, FormatMode) lets everybody run on an up node. Since is the
// time of the last state change, from the injected clock. Secondary marks
// a node whose primary master is another one: an up node is shown as
// "[up]" (Display), and neither we nor our users may use or control it.
//
// # States and who may change them
//
// Every node starts down: a new Table, like a restarted bpmaster, knows
// nothing. Changes come from three kinds of actor. System is the master
// itself reporting what happened; Admin is root through bpctl; User is
// everybody else, who may look but not change. A transition that is not in
// the table below fails with ErrTransition (`node 3: cannot go from down to
// up`); setting the state a node already has, where the table allows it,
// succeeds and changes nothing.
//
// System, rows "from", columns "to" (= marks the allowed no-op):
//
//	              down boot up error unavailable reboot halt pwroff alive
//	down           =    x   .    .        .         .     .     .     x
//	boot           x    =   x    x        .         x     x     x     .
//	up             x    x   .    .        .         x     x     x     .
//	error          x    x   .    .        .         x     x     x     .
//	unavailable    x    x   .    .        .         x     x     x     .
//	reboot         x    x   .    .        .         =     .     .     .
//	halt           x    x   .    .        .         .     =     .     .
//	pwroff         x    x   .    .        .         .     .     =     .
//	alive          x    x   .    .        .         .     .     .     =
//
// That is: a node that connects goes boot, whatever it was (a rebooted or
// halted node reporting in, or a reconnect); node_up's exit status moves
// boot to up or error; a lost heartbeat or connection makes any node down;
// a node that announces it is going away goes reboot, halt or pwroff; a
// non-Scyld host that only sends stats goes from down to alive.
//
// Admin:
//
//	              down boot up error unavailable reboot halt pwroff alive
//	boot           .    .   .    x        x         x     x     x     .
//	up             .    .   =    x        x         x     x     x     .
//	error          .    .   x    =        x         x     x     x     .
//	unavailable    .    .   x    x        =         x     x     x     .
//	(down, reboot, halt, pwroff, alive: nothing)
//
// That is: root may set up (from error or unavailable, as ClusterWare
// documents: not from boot, where node_up decides), error and unavailable,
// and may ask for reboot, halt or pwroff, but only of a node that is
// connected: boot, up, error or unavailable. The transition to reboot, halt
// or pwroff records the request; the master carries it out. Root may not
// control a Secondary node at all: the node obeys only its primary master
// (ErrSecondary). User: no transition at all (fs.ErrPermission).
//
// Going down also clears Secondary: we no longer know who the node's
// primary is.
//
// # Who may use a node
//
// CanRun answers "may this caller start work on this node". Root may use a
// node that is connected and speaking BProc: boot (node_up itself runs bpsh
// and bpcp then), up, error and unavailable (the states ClusterWare leaves
// to the administrator). Down, reboot, halt, pwroff and alive nodes refuse
// everybody (ErrNotAvailable); a Secondary node refuses everybody too
// (ErrSecondary), since it takes work only from its primary. Anyone else
// needs an up node and the POSIX execute check on its mode: the owner bit
// if the caller's uid owns the node, else the group bit if the node's group
// is the caller's gid or one of its supplementary groups, else the other
// bit — only one class is consulted, as for files, so mode 0011 shuts the
// owner out. A refusal wraps fs.ErrPermission and says why:
// `node 3: permission denied (mode ---x------, owner 1000, group 100)`.
// Names are the caller's business. The caller is a wire.Cred: the identity
// the master checks here is the one it sends the node to run as, so it is
// one type (the protocol's, which depends on nothing) and is never
// converted. Owner, group and mode are changed by
// Admin only. The master node (-1) is not in the table: running there is
// running locally, checked by the operating system.
//
// # Watching
//
// Watch gives a channel of every Change — state, owner, group, mode,
// Secondary, and each node Reconfigure adds, removes or readdresses — in
// the order the table made them, each with the node's snapshot before and
// after and the time. Every subscriber has its own unbounded queue drained
// by its own goroutine, so a slow reader never blocks the table or the other
// readers, and nothing is dropped while it is subscribed. Cancelling the
// context ends the subscription: the goroutine exits and closes the channel.
// A setter that changes nothing publishes nothing.
//
// # Reconfiguring
//
// Reconfigure replaces the node list when the config file is reloaded.
// Nodes are matched by number: a node that remains keeps its state, owner,
// group, mode and Secondary mark and takes its new MACs and address; a new
// node starts down; a node beyond the new list is gone.
//
// Only Num, MACs and Addr are read from the Nodes given to New and
// Reconfigure; the rest belongs to the table. Numbers run from 0 to the
// highest number given: a number never given is a node with no MACs or
// address yet, a negative number is ignored, and when a number is given
// twice the last one wins. Numbers are trusted to be sane (the config
// package bounds them): the table has a slot for every number up to the
// highest.
package nodes
