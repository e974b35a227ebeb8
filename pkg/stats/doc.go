// Package stats is beostat's data path: sendstats on a node (or on any
// ordinary Linux host) reads /proc every few seconds and sends one UDP
// datagram, a Sample, to recvstats on the master (UDP 5545 by default,
// `server beostats N`). The master keeps the latest samples of every node
// in a short ring and hands them to beostat, bpstat and the dashboard.
//
// # Message flow
//
// One way only: node → master, one datagram per interval, no reply, no
// retransmission. A lost datagram costs one sample; the next one carries
// cumulative counters again, so rates stay right. The sender's number is
// never taken from the payload: the receiver maps the datagram's source
// address to a node number (the config's NodeByAddr: node N = iprange start
// + N). A datagram from an address that is no node is dropped and counted.
// A sample may carry the node number its sender believes it has (Claim,
// from the boot parameters); a claim that differs from the source address's
// number is rejected as a spoof or a misconfiguration. Non-Scyld hosts send
// no claim (-1).
//
// Counters are raw and cumulative as /proc has them (CPU jiffies in
// USER_HZ, network bytes and packets); the receiver derives CPU percentages
// and network rates from consecutive samples of the same node (Derive).
// Rates use the sender's uptime as the clock, so neither clock skew nor
// network delay distorts them.
//
// # Byte layout, Version 1
//
//	offset  size  field
//	0       4     magic "beoS"
//	4       1     version (1)
//	5       1     flags, must be 0
//	6       …     a sequence of unsigned varints (encoding/binary Uvarint,
//	              at most 10 bytes each), in this order:
//	  claim+1          node number the sender believes it has, +1 (0 = none)
//	  seq              sender's sample counter
//	  interval_ms      sender's interval: the receiver calls a node stale
//	                   after StaleIntervals silent intervals
//	  uptime_ms        /proc/uptime
//	  load1 load5 load15   /proc/loadavg ×100
//	  running threads  /proc/loadavg fields 4 (running/total)
//	  procs            processes (numeric entries of /proc)
//	  mem_total mem_free mem_available buffers cached swap_total swap_free
//	                   /proc/meminfo, bytes
//	  root_total root_free root_avail    statfs of the root file system, bytes
//	  ncpu             ≤ MaxCPUs, then per CPU (cpu0, cpu1, … of /proc/stat)
//	                   8 varints: user nice system idle iowait irq softirq steal
//	  nif              ≤ MaxIfaces, then per interface (/proc/net/dev):
//	                   namelen (1…15), name (printable ASCII, no space, '/'
//	                   or ':'), then 8 varints: rx_bytes rx_packets rx_errs
//	                   rx_drop tx_bytes tx_packets tx_errs tx_drop
//
// The datagram ends exactly after the last interface: trailing bytes, a
// varint that overflows 64 bits or runs past the end, and a datagram longer
// than MaxSize are errors. A receiver that meets another version drops the
// datagram; Version changes on any incompatible change of this layout.
//
// # The receiver
//
// Receiver reads datagrams (recvmmsg batches where the platform has them),
// decodes, resolves the source, and stores the sample in the node's ring
// (History samples). Readers (Latest, History, Status, All, Marks) get copies and may
// run concurrently with the reader goroutine. With a node table, a
// configured node that sends stats while it is down — it has no bpslave
// session — becomes alive (a non-Scyld host), and an alive node that stops
// sending goes down again after StaleIntervals of its intervals. Nodes the
// master tracks through bpslave are never touched by the receiver.
//
// What each job uses on a node (its cgroup's CPU, memory, tasks, I/O) is
// not in these datagrams: it travels over the bpslave session with the
// job's own stream, and pkg/acct says why.
package stats
